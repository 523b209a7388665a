CREATE TABLE personal_data(
  id text COLLATE "C" PRIMARY KEY,
  code text COLLATE "C" NOT NULL,
  field text COLLATE "C" NOT NULL,
  value text COLLATE "C" NOT NULL,
  salt bytea NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX personal_data_by_age ON personal_data(field, created_at);
