-- The verifiable log: its tree in tiles, its signed heads and their keys
-- (schema/sqlite.sql says what each is for).
CREATE TABLE log_tiles(
  level integer NOT NULL,
  idx bigint NOT NULL,
  hashes bytea NOT NULL,
  PRIMARY KEY (level, idx)
);
CREATE TABLE log_heads(
  tree_size bigint PRIMARY KEY,
  root bytea NOT NULL,
  at bigint NOT NULL,
  key_id text COLLATE "C" NOT NULL,
  signature bytea NOT NULL
);
CREATE TABLE log_keys(
  key_id text COLLATE "C" PRIMARY KEY,
  public_key bytea NOT NULL,
  added_at bigint NOT NULL
);
