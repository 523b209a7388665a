-- due_counts kept once a batch, not once a cylinder, when the writer asks: a
-- counter row updated by every cylinder of a batch, each in its own savepoint,
-- grows a multixact by one member an update, and each update reads all of it
-- (batch registration was quadratic: 4,000 cylinders in 4.8 s, 8,000 in 18 s).
-- With pingma.due_counts = 'deferred' (SET LOCAL) the trigger counts nothing, and
-- the writer adds the batch's cylinders at its end with pingma_count_due.
CREATE OR REPLACE FUNCTION pingma_due_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' AND current_setting('pingma.due_counts', true) = 'deferred' THEN
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.state = 'active' THEN
    UPDATE due_counts SET n = n - 1 WHERE company_id = OLD.owner_company_id
      AND basis = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN 0
                       WHEN OLD.last_inspection IS NOT NULL THEN 1 ELSE 2 END
      AND model = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN '' ELSE OLD.model END
      AND base = COALESCE(OLD.next_inspection_due, OLD.last_inspection, OLD.manufactured);
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.state = 'active' THEN
    INSERT INTO due_counts(company_id, basis, model, base, n) VALUES(NEW.owner_company_id,
      CASE WHEN NEW.next_inspection_due IS NOT NULL THEN 0
           WHEN NEW.last_inspection IS NOT NULL THEN 1 ELSE 2 END,
      CASE WHEN NEW.next_inspection_due IS NOT NULL THEN '' ELSE NEW.model END,
      COALESCE(NEW.next_inspection_due, NEW.last_inspection, NEW.manufactured), 1)
    ON CONFLICT (company_id, basis, model, base) DO UPDATE SET n = due_counts.n + 1;
  END IF;
  RETURN NULL;
END $$;
-- The inserts the trigger left uncounted: the cylinders of `codes`, counted as the
-- trigger counts them, one update a counter row.
CREATE OR REPLACE FUNCTION pingma_count_due(codes text[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO due_counts(company_id, basis, model, base, n)
  SELECT owner_company_id,
         CASE WHEN next_inspection_due IS NOT NULL THEN 0
              WHEN last_inspection IS NOT NULL THEN 1 ELSE 2 END,
         CASE WHEN next_inspection_due IS NOT NULL THEN '' ELSE model END,
         COALESCE(next_inspection_due, last_inspection, manufactured), count(*)
  FROM cylinders WHERE code = ANY(codes) AND state = 'active'
  GROUP BY 1, 2, 3, 4
  ON CONFLICT (company_id, basis, model, base) DO UPDATE SET n = due_counts.n + excluded.n;
$$;
