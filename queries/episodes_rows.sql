-- Episodes: the last row from $1 on and how many rows (of `event_rows`) that is.
SELECT max(ts) AS last, count(ts) AS rows FROM event_rows WHERE ts >= CAST($1 AS TIMESTAMP);
