UPDATE tokens SET id = 'tk-' || lower(hex(randomblob(6))) WHERE id IS NULL
