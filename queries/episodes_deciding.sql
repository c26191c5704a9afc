-- Episodes: the last line in [$1, $2) that decides what an invalidation was (where a rewind
-- for a late line at $2 starts: queries/episodes_rewind.sql).
SELECT max(ts) AS at FROM event_rows
WHERE episode_follower(event) AND ts >= CAST($1 AS TIMESTAMP) AND ts < CAST($2 AS TIMESTAMP);
