-- The signed heads by time: the sequencer thins those older than a week to one an
-- hour (store/log_rows.h, ThinHeads), an hour's heads at a time, which without this
-- index read every head kept (some 2.4 million a week at four heads a second).
CREATE INDEX IF NOT EXISTS log_heads_by_at ON log_heads(at);
