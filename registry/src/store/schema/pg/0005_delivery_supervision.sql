-- Delivery supervision (定位监管): areas, vehicle terminals, positions and alerts
-- (schema/sqlite.sql says what each holds).
ALTER TABLE vehicles ADD COLUMN terminal_phone text COLLATE "C";
ALTER TABLE customers ADD COLUMN lat double precision;
ALTER TABLE customers ADD COLUMN lon double precision;
CREATE TABLE areas(
  id text COLLATE "C" PRIMARY KEY,
  company_id text COLLATE "C" NOT NULL REFERENCES companies(id),
  name text COLLATE "C" NOT NULL,
  geometry text COLLATE "C" NOT NULL,
  updated_at bigint NOT NULL
);
CREATE INDEX areas_by_company ON areas(company_id, id);
CREATE INDEX couriers_by_vehicle ON couriers(vehicle_id);
CREATE UNIQUE INDEX vehicles_by_terminal ON vehicles(terminal_phone)
  WHERE terminal_phone IS NOT NULL;
CREATE TABLE terminals(
  phone text COLLATE "C" PRIMARY KEY,
  vehicle_id text COLLATE "C" NOT NULL REFERENCES vehicles(id),
  terminal_id text COLLATE "C" NOT NULL,
  auth_hash bytea NOT NULL,
  registered_at bigint NOT NULL,
  detail text COLLATE "C" NOT NULL
);
CREATE TABLE positions(
  vehicle_id text COLLATE "C" NOT NULL,
  at bigint NOT NULL,
  event_id text COLLATE "C" NOT NULL,
  lat double precision NOT NULL,
  lon double precision NOT NULL,
  speed_kmh double precision,
  heading bigint,
  accuracy_m double precision,
  source text COLLATE "C" NOT NULL,
  outside bigint NOT NULL,
  received_at bigint NOT NULL,
  PRIMARY KEY(vehicle_id, at, event_id)
);
CREATE UNIQUE INDEX positions_by_event ON positions(vehicle_id, event_id)
  WHERE event_id <> '';
CREATE TABLE vehicle_positions(
  vehicle_id text COLLATE "C" PRIMARY KEY,
  at bigint NOT NULL,
  lat double precision NOT NULL,
  lon double precision NOT NULL,
  speed_kmh double precision,
  heading bigint,
  source text COLLATE "C" NOT NULL,
  received_at bigint NOT NULL,
  run_start bigint,
  run_alerted bigint NOT NULL DEFAULT 0
);
CREATE TABLE alerts(
  id text COLLATE "C" PRIMARY KEY,
  kind text COLLATE "C" NOT NULL,
  vehicle_id text COLLATE "C" NOT NULL,
  courier_id text COLLATE "C" NOT NULL,
  company_id text COLLATE "C" NOT NULL,
  at bigint NOT NULL,
  lat double precision,
  lon double precision,
  detail text COLLATE "C" NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX alerts_by_time ON alerts(at, id);
CREATE INDEX alerts_by_company ON alerts(company_id, at, id);
CREATE INDEX alerts_by_vehicle ON alerts(vehicle_id, kind, at);
