ALTER TABLE cylinders ADD COLUMN registered_at INTEGER
