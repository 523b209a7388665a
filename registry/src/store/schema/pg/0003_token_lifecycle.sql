ALTER TABLE tokens ADD COLUMN id text COLLATE "C",
  ADD COLUMN note text COLLATE "C",
  ADD COLUMN expires text COLLATE "C",
  ADD COLUMN expires_at bigint,
  ADD COLUMN revoked_at bigint,
  ADD COLUMN revoked_seq bigint,
  ADD COLUMN last_used_at bigint;
UPDATE tokens SET id = 'tk-' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12)
  WHERE id IS NULL;
ALTER TABLE tokens ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX tokens_by_id ON tokens(id);
CREATE INDEX tokens_by_revoked_seq ON tokens(revoked_seq);
