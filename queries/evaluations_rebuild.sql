-- The evaluations in [$1, $2] of `evaluations_5m`, from `request_minutes` (a rebuild: each
-- day's after its minutes, with the five at the next day's start that its last minutes reach).
INSERT OR REPLACE INTO evaluations_5m
SELECT * FROM evaluations_5m_of(CAST($1 AS TIMESTAMP), CAST($2 AS TIMESTAMP));
