-- The day counts of checks and refusals, a row per registry's writer: the rows
-- of a station's day are summed when read (every reader sums them), so that
-- registries on one database never wait for each other's batch on one hot row.
-- `shard` is the writing connection's backend pid, unique among the connections
-- open at once; rows of writers gone stay, and are summed with the others.
-- (Each statement may run again over its own work.)
ALTER TABLE check_days ADD COLUMN IF NOT EXISTS shard integer NOT NULL DEFAULT 0;
ALTER TABLE check_days DROP CONSTRAINT IF EXISTS check_days_pkey;
ALTER TABLE check_days ADD PRIMARY KEY (day, station_id, shard);
ALTER TABLE refusal_days ADD COLUMN IF NOT EXISTS shard integer NOT NULL DEFAULT 0;
ALTER TABLE refusal_days DROP CONSTRAINT IF EXISTS refusal_days_pkey;
ALTER TABLE refusal_days ADD PRIMARY KEY (day, station_id, reason, shard);
