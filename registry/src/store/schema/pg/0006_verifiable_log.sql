-- The verifiable log: its tree in tiles, its signed heads and their keys
-- (schema/sqlite.sql says what each is for).
CREATE TABLE log_tiles(
  id bigint PRIMARY KEY,
  hashes bytea NOT NULL
);
-- Kept in the row as it is (2 KiB of hashes, which do not compress): not moved
-- out to TOAST, where each tile read would be three.
ALTER TABLE log_tiles ALTER COLUMN hashes SET STORAGE PLAIN;
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
