UPDATE cylinders SET registered_at = COALESCE(r.at, 0)
FROM (SELECT c.code AS code, e.at AS at FROM cylinders c LEFT JOIN
        (SELECT code, MIN(at) AS at FROM events WHERE type = 'registered' GROUP BY code) e
        ON e.code = c.code WHERE c.registered_at IS NULL) r
WHERE cylinders.code = r.code;
