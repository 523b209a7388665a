-- Appends without a lock: every registry on the database commits its events at
-- once, not one batch after another under the chain head's row lock.
--
-- The hash chain ends here. chain_head keeps its last link (seq, hash), which
-- `verify` checks that the events up to it still reach; events after it have no
-- link (hash ''), and the verifiable log's tree is what vouches for them. Their
-- numbers come from event_seq, a block of 1024 at a time (kSeqBlock in
-- store/store.h), with gaps and not in commit order.
--
-- (Each statement may run again over its own work, as a store whose recorded
-- version was set back would have it run.)
ALTER TABLE events ADD COLUMN IF NOT EXISTS tx bigint;
-- An event's revision (tx): its transaction's id plus the chain's length, so that
-- revisions are larger than every seq the rows of the chained log recorded as
-- theirs (cylinders' rev, tokens' revoked_seq). Below pingma_horizon() every
-- revision is final: committed or rolled back. Readers that follow rows or events
-- by revision read below it, and never see one appear behind them.
CREATE INDEX IF NOT EXISTS events_by_tx ON events(tx, seq) WHERE tx IS NOT NULL;
CREATE OR REPLACE FUNCTION pingma_revision_base() RETURNS bigint LANGUAGE sql STABLE
  AS 'SELECT seq FROM chain_head';
CREATE OR REPLACE FUNCTION pingma_horizon() RETURNS bigint LANGUAGE sql STABLE
  AS 'SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint + pingma_revision_base()';
CREATE SEQUENCE IF NOT EXISTS event_seq INCREMENT BY 1024 MINVALUE 1;
SELECT setval('event_seq', (SELECT seq FROM chain_head) + 1, false)
  WHERE NOT (SELECT is_called FROM event_seq);
-- The log's leaves in order: the sequencer gives each committed event the next
-- one, events in the order of their revisions (then seqs) once the horizon has
-- passed them. The chain's events keep theirs: leaf = seq - 1.
CREATE TABLE IF NOT EXISTS log_leaves(
  leaf bigint PRIMARY KEY,
  seq bigint NOT NULL,
  tx bigint
);
CREATE UNIQUE INDEX IF NOT EXISTS log_leaves_by_seq ON log_leaves(seq);
INSERT INTO log_leaves(leaf, seq) SELECT seq - 1, seq FROM events WHERE tx IS NULL
  ON CONFLICT DO NOTHING;
