-- Episodes: the first signal there is (where advancing starts when nothing is kept).
SELECT min(ts) AS first FROM event_rows WHERE episode_event(event);
