-- Export: the UTC days of [$1, $2) that have requests.
SELECT DISTINCT strftime(minute, '%Y-%m-%d') AS day
FROM request_minutes
WHERE minute >= date_trunc('minute', CAST($1 AS TIMESTAMP)) AND minute < CAST($2 AS TIMESTAMP)
ORDER BY day
