INSERT INTO due_counts(company_id, basis, model, base, n)
SELECT owner_company_id,
  CASE WHEN next_inspection_due IS NOT NULL THEN 0
       WHEN last_inspection IS NOT NULL THEN 1 ELSE 2 END AS basis,
  CASE WHEN next_inspection_due IS NOT NULL THEN '' ELSE model END AS m,
  COALESCE(next_inspection_due, last_inspection, manufactured) AS b, COUNT(*)
FROM cylinders WHERE state = 'active' GROUP BY owner_company_id, basis, m, b;
