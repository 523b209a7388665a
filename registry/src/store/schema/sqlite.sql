CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  code TEXT,
  type TEXT NOT NULL,
  at INTEGER NOT NULL,
  actor_role TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  body TEXT NOT NULL,
  hash BLOB NOT NULL
);
-- A cylinder's history, partitioned by time (kEventBucketBits): new entries all
-- land in the newest partition, whose pages stay few and hot however large the
-- log grows, instead of at random places in one index over every event.
CREATE INDEX IF NOT EXISTS events_by_code_time ON events(seq >> 16, code, seq)
  WHERE code IS NOT NULL;
DROP INDEX IF EXISTS events_by_code;
-- Bearer tokens, by the SHA-256 of the secret (the secret itself is never kept).
-- `id` is a short public name (random, not derived from the secret) by which a
-- token is listed and revoked; `expires` the last day it works (YYYY-MM-DD, in
-- the policy's zone) and `expires_at` the first instant (Unix ms) it no longer
-- does; `revoked_seq` the log's token_revoked event, whose max() tells every
-- registry on the database that a token was revoked; `last_used_at` is written
-- at most once a minute per token (tokens.h).
CREATE TABLE IF NOT EXISTS tokens(
  hash BLOB PRIMARY KEY,
  role TEXT NOT NULL,
  subject TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  id TEXT,
  note TEXT,
  expires TEXT,
  expires_at INTEGER,
  revoked_at INTEGER,
  revoked_seq INTEGER,
  last_used_at INTEGER
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS tokens_by_id ON tokens(id);
CREATE INDEX IF NOT EXISTS tokens_by_revoked_seq ON tokens(revoked_seq);
CREATE TABLE IF NOT EXISTS companies(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  license_number TEXT,
  license_valid_until TEXT,
  license_revoked INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stations(
  id TEXT PRIMARY KEY,
  company_id TEXT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  district TEXT NOT NULL DEFAULT '',
  locked INTEGER NOT NULL DEFAULT 0,
  lock_reason TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS operators(
  id TEXT PRIMARY KEY,
  company_id TEXT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  cert_number TEXT,
  cert_valid_until TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS custody(
  id INTEGER PRIMARY KEY,
  owner_company_id TEXT NOT NULL REFERENCES companies(id),
  custodian_company_id TEXT NOT NULL REFERENCES companies(id),
  valid_from TEXT NOT NULL,
  valid_until TEXT NOT NULL,
  created_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS custody_by_custodian ON custody(custodian_company_id);
CREATE TABLE IF NOT EXISTS recalls(
  id INTEGER PRIMARY KEY,
  manufacturer TEXT NOT NULL,
  manufactured_from TEXT,
  manufactured_to TEXT,
  reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recalls_by_manufacturer ON recalls(manufacturer);
CREATE TABLE IF NOT EXISTS cylinders(
  code TEXT PRIMARY KEY,
  owner_company_id TEXT NOT NULL REFERENCES companies(id),
  model TEXT NOT NULL,
  phase TEXT NOT NULL,
  manufacturer TEXT NOT NULL,
  serial TEXT NOT NULL DEFAULT '',
  manufactured TEXT NOT NULL,
  tare_kg REAL NOT NULL,
  water_capacity_l REAL,
  allowed_fill_kg REAL,
  design_life_years INTEGER,
  registration_no TEXT NOT NULL DEFAULT '',
  registration_state TEXT NOT NULL DEFAULT 'valid',
  last_inspection TEXT,
  last_inspection_result TEXT,
  next_inspection_due TEXT,
  assessment_date TEXT,
  assessment_passed INTEGER,
  assessment_extends_until TEXT,
  state TEXT NOT NULL DEFAULT 'active',
  state_reason TEXT,
  state_since INTEGER,
  last_fill_station TEXT,
  last_fill_at INTEGER,
  rev INTEGER NOT NULL,
  registered_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cylinders_by_owner_rev ON cylinders(owner_company_id, rev);
CREATE INDEX IF NOT EXISTS cylinders_scrap_pending ON cylinders(state) WHERE state <> 'active';
-- The scrap queue in its order (oldest flag first), all companies and per company.
CREATE INDEX IF NOT EXISTS cylinders_scrap_queue ON cylinders(state_since, code)
  WHERE state = 'scrap_pending';
CREATE INDEX IF NOT EXISTS cylinders_scrap_queue_by_owner
  ON cylinders(owner_company_id, state_since, code) WHERE state = 'scrap_pending';
CREATE TABLE IF NOT EXISTS carriers(
  carrier TEXT PRIMARY KEY,
  code TEXT NOT NULL REFERENCES cylinders(code),
  bound_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS carriers_by_code ON carriers(code);
CREATE TABLE IF NOT EXISTS fills(
  event_id TEXT PRIMARY KEY,
  check_id TEXT UNIQUE,
  code TEXT NOT NULL,
  station_id TEXT NOT NULL,
  ended_at INTEGER NOT NULL,
  result TEXT NOT NULL,
  net_kg REAL,
  seq INTEGER NOT NULL
);
-- Secrets the server makes for itself, such as the key of the customers' phone
-- and ID hashes (never sent anywhere).
-- Personal data the log refers to but must not keep (personal_data.cpp): deleted
-- when its field's retention (policy) has passed, or a regulator erases it.
CREATE TABLE IF NOT EXISTS personal_data(
  id TEXT PRIMARY KEY,
  code TEXT NOT NULL,
  field TEXT NOT NULL,
  value TEXT NOT NULL,
  salt BLOB NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS personal_data_by_age ON personal_data(field, created_at);
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;
-- Delivery (送气): couriers bound to one vehicle (人车对应) with their zones (a JSON
-- array of districts), vehicles, and real-name customers (实名购气), whose phone
-- and ID number are kept only as keyed hashes and masked forms.
CREATE TABLE IF NOT EXISTS vehicles(
  id TEXT PRIMARY KEY,
  company_id TEXT NOT NULL REFERENCES companies(id),
  plate TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT '',
  terminal_phone TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS couriers(
  id TEXT PRIMARY KEY,
  company_id TEXT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  vehicle_id TEXT NOT NULL REFERENCES vehicles(id),
  zones TEXT NOT NULL,
  cert_number TEXT,
  cert_valid_until TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS customers(
  id TEXT PRIMARY KEY,
  company_id TEXT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  phone_hash BLOB NOT NULL,
  phone_masked TEXT NOT NULL,
  id_hash BLOB NOT NULL,
  id_masked TEXT NOT NULL,
  address TEXT NOT NULL,
  district TEXT NOT NULL,
  kind TEXT NOT NULL,
  basement INTEGER NOT NULL,
  semi_basement INTEGER NOT NULL,
  cylinder_room INTEGER NOT NULL,
  outdoor INTEGER NOT NULL,
  lat REAL,
  lon REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS customers_by_phone ON customers(phone_hash);
CREATE INDEX IF NOT EXISTS customers_by_id_number ON customers(id_hash);
-- Every handover by its client-made event_id, with the answer given, so that a
-- retry gets the same answer and nothing is stored twice.
CREATE TABLE IF NOT EXISTS handovers(
  event_id TEXT PRIMARY KEY,
  code TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  courier_id TEXT NOT NULL,
  direction TEXT NOT NULL,
  decision TEXT NOT NULL,
  answer TEXT NOT NULL,
  seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS handovers_by_code ON handovers(code, seq)
  WHERE direction = 'deliver' AND decision = 'allow';
-- Where each handed-over cylinder is: with a customer after a delivery, back with
-- a company after a collection.
CREATE TABLE IF NOT EXISTS whereabouts(
  code TEXT PRIMARY KEY,
  holder_kind TEXT NOT NULL,
  holder_id TEXT NOT NULL,
  since_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS whereabouts_by_holder ON whereabouts(holder_kind, holder_id);
-- The hazard ledger (隐患台账).
CREATE TABLE IF NOT EXISTS hazards(
  id TEXT PRIMARY KEY,
  code TEXT NOT NULL,
  item TEXT NOT NULL,
  cylinder TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  company_id TEXT NOT NULL,
  responsible TEXT NOT NULL,
  opened_by TEXT NOT NULL,
  opened_at INTEGER NOT NULL,
  deadline TEXT NOT NULL,
  state TEXT NOT NULL,
  closed_by TEXT,
  closed_at INTEGER,
  closed_by_actor TEXT,
  how TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hazards_by_company ON hazards(company_id, state, deadline);
CREATE INDEX IF NOT EXISTS hazards_by_state ON hazards(state, deadline);
-- ---- The regulator's reads (regulator.cpp) ----------------------------------------
-- Fill checks per station and day (in the policy's zone), kept by each check
-- (fill_checks.cpp), so that statistics cost days x stations, never the log. A check
-- a station decided offline counts on the day it was decided, refused when the
-- station refused; offline_checks, offline_refused and disagreements (the offline
-- checks the registry decided otherwise) count those among them. (Columns added
-- after the first are at the end, where ALTER TABLE puts them in an older store.)
CREATE TABLE IF NOT EXISTS check_days(
  day TEXT NOT NULL,
  station_id TEXT NOT NULL,
  company_id TEXT NOT NULL,
  checks INTEGER NOT NULL,
  refused INTEGER NOT NULL,
  offline_checks INTEGER NOT NULL DEFAULT 0,
  offline_refused INTEGER NOT NULL DEFAULT 0,
  disagreements INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(day, station_id)
) WITHOUT ROWID;
-- Refused checks per station, day and reason: a check refused for several
-- reasons counts once for each; offline_n and disagreements count the offline
-- refusals among them, and those the registry would have allowed.
CREATE TABLE IF NOT EXISTS refusal_days(
  day TEXT NOT NULL,
  station_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  company_id TEXT NOT NULL,
  n INTEGER NOT NULL,
  offline_n INTEGER NOT NULL DEFAULT 0,
  disagreements INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(day, station_id, reason)
) WITHOUT ROWID;
-- Every refused check (a blocked fill_check event, by its seq): the ledger of
-- refusals without a walk of the log. Allowed checks leave nothing here. A
-- refusal decided offline has `at` the moment the station decided, offline 1,
-- and the registry's own decision and whether it agrees (1 or 0); an online one
-- has them null.
CREATE TABLE IF NOT EXISTS refusals(
  seq INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  day TEXT NOT NULL,
  station_id TEXT NOT NULL,
  company_id TEXT NOT NULL,
  operator_id TEXT NOT NULL,
  code TEXT NOT NULL,
  reasons TEXT NOT NULL,
  offline INTEGER NOT NULL DEFAULT 0,
  registry_decision TEXT,
  agrees INTEGER
);
-- Every check a station decided offline and uploaded (POST /v1/fill-checks/offline),
-- by the station's check_id, with the answer given and its fill_check event: the
-- key that keeps a check sent again from being stored twice, on any registry of
-- the store, across restarts.
CREATE TABLE IF NOT EXISTS offline_checks(
  check_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  answer TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refusals_by_day ON refusals(day, seq);
CREATE INDEX IF NOT EXISTS refusals_by_company ON refusals(company_id, day, seq);
CREATE INDEX IF NOT EXISTS refusals_by_station ON refusals(station_id, day, seq);
-- Active cylinders by what their next inspection is due from, per owner, kept by
-- the triggers below. The due date itself depends on the policy (the model's
-- interval), so the summary keeps its inputs: basis 0 a recorded due date (model
-- ''), 1 the last inspection's date, 2 the manufacture year-month; the reader adds
-- the interval. Its size is bounded by the calendar, not by the fleet.
CREATE TABLE IF NOT EXISTS due_counts(
  company_id TEXT NOT NULL,
  basis INTEGER NOT NULL,
  model TEXT NOT NULL,
  base TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY(company_id, basis, model, base)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS due_counts_insert AFTER INSERT ON cylinders
  WHEN NEW.state = 'active'
BEGIN
  INSERT INTO due_counts(company_id, basis, model, base, n) VALUES(NEW.owner_company_id,
    CASE WHEN NEW.next_inspection_due IS NOT NULL THEN 0
         WHEN NEW.last_inspection IS NOT NULL THEN 1 ELSE 2 END,
    CASE WHEN NEW.next_inspection_due IS NOT NULL THEN '' ELSE NEW.model END,
    COALESCE(NEW.next_inspection_due, NEW.last_inspection, NEW.manufactured), 1)
  ON CONFLICT(company_id, basis, model, base) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS due_counts_delete AFTER DELETE ON cylinders
  WHEN OLD.state = 'active'
BEGIN
  UPDATE due_counts SET n = n - 1 WHERE company_id = OLD.owner_company_id
    AND basis = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN 0
                     WHEN OLD.last_inspection IS NOT NULL THEN 1 ELSE 2 END
    AND model = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN '' ELSE OLD.model END
    AND base = COALESCE(OLD.next_inspection_due, OLD.last_inspection, OLD.manufactured);
END;
CREATE TRIGGER IF NOT EXISTS due_counts_update AFTER UPDATE OF owner_company_id, model,
  manufactured, last_inspection, next_inspection_due, state ON cylinders
BEGIN
  UPDATE due_counts SET n = n - 1 WHERE OLD.state = 'active'
    AND company_id = OLD.owner_company_id
    AND basis = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN 0
                     WHEN OLD.last_inspection IS NOT NULL THEN 1 ELSE 2 END
    AND model = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN '' ELSE OLD.model END
    AND base = COALESCE(OLD.next_inspection_due, OLD.last_inspection, OLD.manufactured);
  INSERT INTO due_counts(company_id, basis, model, base, n) SELECT NEW.owner_company_id,
    CASE WHEN NEW.next_inspection_due IS NOT NULL THEN 0
         WHEN NEW.last_inspection IS NOT NULL THEN 1 ELSE 2 END,
    CASE WHEN NEW.next_inspection_due IS NOT NULL THEN '' ELSE NEW.model END,
    COALESCE(NEW.next_inspection_due, NEW.last_inspection, NEW.manufactured), 1
    WHERE NEW.state = 'active'
  ON CONFLICT(company_id, basis, model, base) DO UPDATE SET n = n + 1;
END;
-- registered_at, the time of a cylinder's `registered` event (the start of the wait
-- of a cylinder never filled), is written by the INSERT itself: a trigger setting
-- it (as the schema once had) costs a second write of every new row.
DROP TRIGGER IF EXISTS cylinders_registered_at;
-- Active cylinders by their last sight, per owner, oldest first, so that a page
-- of the unseen costs its size: those filled by their last fill, those never
-- filled by their registration. Both keys grow with time, so that new entries
-- land at the end of an owner's range; a registration adds one entry, a
-- cylinder's first fill moves it from one index to the other. (A new row enters
-- the second only with registered_at set.)
CREATE INDEX IF NOT EXISTS cylinders_unseen_filled
  ON cylinders(owner_company_id, last_fill_at, code)
  WHERE state = 'active' AND last_fill_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS cylinders_unseen_unfilled
  ON cylinders(owner_company_id, registered_at, code)
  WHERE state = 'active' AND last_fill_at IS NULL AND registered_at IS NOT NULL;
-- The fills ledger by station and time, the public reports newest first, and the
-- console's lists by company.
CREATE INDEX IF NOT EXISTS fills_by_station_time ON fills(station_id, ended_at);
-- A cylinder's latest fill, which every delivery handover checks.
CREATE INDEX IF NOT EXISTS fills_by_code ON fills(code, seq);
CREATE INDEX IF NOT EXISTS events_public_reports ON events(seq) WHERE type = 'public_report';
CREATE INDEX IF NOT EXISTS stations_by_company ON stations(company_id, id);
CREATE INDEX IF NOT EXISTS vehicles_by_company ON vehicles(company_id, id);
CREATE INDEX IF NOT EXISTS couriers_by_company ON couriers(company_id, id);
CREATE INDEX IF NOT EXISTS customers_by_name ON customers(name, id);
CREATE INDEX IF NOT EXISTS customers_by_company_name ON customers(company_id, name, id);
-- ---- Delivery supervision (定位监管, supervision.cpp) --------------------------------
-- A company's delivery areas: GeoJSON Polygon or MultiPolygon as given (WGS-84).
-- `version` grows with every change, so that every registry sees a change made by
-- another (the areas_version row of meta).
CREATE TABLE IF NOT EXISTS areas(
  id TEXT PRIMARY KEY,
  company_id TEXT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  geometry TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS areas_by_company ON areas(company_id, id);
-- The courier bound to a vehicle, which every position looks up.
CREATE INDEX IF NOT EXISTS couriers_by_vehicle ON couriers(vehicle_id);
-- A vehicle's JT/T 808 terminal, by its phone number (leading zeros stripped),
-- once it has registered: the hash of the authentication code it was given.
CREATE UNIQUE INDEX IF NOT EXISTS vehicles_by_terminal ON vehicles(terminal_phone)
  WHERE terminal_phone IS NOT NULL;
CREATE TABLE IF NOT EXISTS terminals(
  phone TEXT PRIMARY KEY,
  vehicle_id TEXT NOT NULL REFERENCES vehicles(id),
  terminal_id TEXT NOT NULL,
  auth_hash BLOB NOT NULL,
  registered_at INTEGER NOT NULL,
  detail TEXT NOT NULL
) WITHOUT ROWID;
-- Positions, outside the log (they are the couriers' personal data, deleted after
-- position_retention_days): by vehicle and the position's own time, once per
-- event_id of that vehicle. A terminal's position has no event_id (''): it is
-- once per vehicle and second, as JT/T 808 times it, which keeps a city's year of
-- them a third smaller. `outside`: 1 when it lay outside every area of the
-- courier's zones as they were when it arrived, 0 inside one or when the zones name
-- no area.
CREATE TABLE IF NOT EXISTS positions(
  vehicle_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  lat REAL NOT NULL,
  lon REAL NOT NULL,
  speed_kmh REAL,
  heading INTEGER,
  accuracy_m REAL,
  source TEXT NOT NULL,
  outside INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY(vehicle_id, at, event_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS positions_by_event ON positions(vehicle_id, event_id)
  WHERE event_id <> '';
-- Each vehicle's latest position by its own time; `run_start`, the time of the
-- first of the positions outside that lead to it (NULL when it is inside), and
-- whether that run raised its zone_exit alert.
CREATE TABLE IF NOT EXISTS vehicle_positions(
  vehicle_id TEXT PRIMARY KEY,
  at INTEGER NOT NULL,
  lat REAL NOT NULL,
  lon REAL NOT NULL,
  speed_kmh REAL,
  heading INTEGER,
  source TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  run_start INTEGER,
  run_alerted INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Alerts (zone_exit, handover_away, no_position): they flag, they do not block.
-- Their place is the couriers' personal data too: kept as long as positions.
CREATE TABLE IF NOT EXISTS alerts(
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  vehicle_id TEXT NOT NULL,
  courier_id TEXT NOT NULL,
  company_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  lat REAL,
  lon REAL,
  detail TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts(at, id);
CREATE INDEX IF NOT EXISTS alerts_by_company ON alerts(company_id, at, id);
CREATE INDEX IF NOT EXISTS alerts_by_vehicle ON alerts(vehicle_id, kind, at);
-- The verifiable log (store/log_tree.h, cases/verifiable_log.h): every event a
-- leaf, the leaf at index i the event of seq i + 1. The tree is kept in tiles:
-- at level t, tile idx (its id: t * 2^48 + idx) holds the hashes (32 bytes each) of
-- the complete nodes of height 6t numbered idx*64 onwards. A rowid table: its rows'
-- 2 KiB fit in a page, where a WITHOUT ROWID table's (a B-tree of keys, about 1 KiB
-- kept in the page) spilled each into an overflow page. Every head the sequencer signed, and the
-- public keys that signed them (the private key is in the secrets folder).
CREATE TABLE IF NOT EXISTS log_tiles(
  id INTEGER PRIMARY KEY,
  hashes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS log_heads(
  tree_size INTEGER PRIMARY KEY,
  root BLOB NOT NULL,
  at INTEGER NOT NULL,
  key_id TEXT NOT NULL,
  signature BLOB NOT NULL
);
-- By time, for the thinning of heads older than a week (store/log_rows.h, ThinHeads).
CREATE INDEX IF NOT EXISTS log_heads_by_at ON log_heads(at);
CREATE TABLE IF NOT EXISTS log_keys(
  key_id TEXT PRIMARY KEY,
  public_key BLOB NOT NULL,
  added_at INTEGER NOT NULL
) WITHOUT ROWID;
