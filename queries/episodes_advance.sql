-- Episodes: closes the clusters that can no longer change among the signals of
-- [lowest frontier, `episode_until`) (the ingester: all it has; a rebuild: up to the end of
-- the day it rebuilt), keeps them in `episode_clusters` and moves the frontiers on.
-- `episode_settled`: the last line that decides what an invalidation was; the data has gone
-- on to it.
SET VARIABLE episode_from = (SELECT coalesce(min(frontier), '-infinity'::TIMESTAMP) FROM episode_state);
SET VARIABLE episode_settled = (
    SELECT max(ts) FROM event_rows
    WHERE episode_follower(event) AND ts >= getvariable('episode_from') AND ts < getvariable('episode_until'));

CREATE OR REPLACE TEMP TABLE episode_live AS
SELECT c.*, coalesce(c.signal_end + episode_settle_after() < getvariable('episode_settled'), false) AS closed
FROM episode_clusters_in(getvariable('episode_from'), getvariable('episode_until')) c
WHERE c.signal_start >= episode_frontier_of(c.kind);

INSERT INTO episode_clusters BY NAME SELECT * EXCLUDE (closed) FROM episode_live WHERE closed;

-- A kind's frontier: its first open cluster, else the settled point (kinds without a row of
-- their own, the '' row, likewise); never earlier than it was.
INSERT OR REPLACE INTO episode_state
WITH kinds AS (
    SELECT kind FROM episode_state UNION SELECT kind FROM episode_live UNION SELECT ''
),
next AS (
    SELECT k.kind, episode_frontier_of(k.kind) AS was,
           coalesce((SELECT min(l.signal_start) FROM episode_live l WHERE l.kind = k.kind AND NOT l.closed),
                    getvariable('episode_settled')) AS now
    FROM kinds k
)
SELECT kind, greatest(was, coalesce(now, was)) AS frontier FROM next;

DROP TABLE episode_live;
