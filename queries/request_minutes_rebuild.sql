-- The minutes of [$1, $2) of `request_minutes`, from `events`.
INSERT INTO request_minutes BY NAME
SELECT * FROM request_minutes_of(CAST($1 AS TIMESTAMP), CAST($2 AS TIMESTAMP));
