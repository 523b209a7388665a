ALTER TABLE check_days ADD COLUMN offline_checks bigint NOT NULL DEFAULT 0,
  ADD COLUMN offline_refused bigint NOT NULL DEFAULT 0,
  ADD COLUMN disagreements bigint NOT NULL DEFAULT 0;
ALTER TABLE refusal_days ADD COLUMN offline_n bigint NOT NULL DEFAULT 0,
  ADD COLUMN disagreements bigint NOT NULL DEFAULT 0;
ALTER TABLE refusals ADD COLUMN offline bigint NOT NULL DEFAULT 0,
  ADD COLUMN registry_decision text COLLATE "C",
  ADD COLUMN agrees bigint;
CREATE TABLE offline_checks(
  check_id text COLLATE "C" PRIMARY KEY,
  seq bigint NOT NULL,
  answer text COLLATE "C" NOT NULL
);
