-- Episodes: reopens what a late line (queries/episodes_late.sql) can change. From
-- `episode_rewind_to`, the last line before it that decides what an invalidation was
-- (queries/episodes_deciding.sql: an invalidation after that line may now be followed by the
-- late one), each kind whose frontier is later loses the closed clusters that reach that
-- point (a late signal may join them, a late miss belong to them), and its frontier goes back
-- to the first of them.
CREATE OR REPLACE TEMP TABLE episode_reopened AS
SELECT c.kind, min(c.signal_start) AS start
FROM episode_clusters c
WHERE getvariable('episode_rewind_to') < episode_frontier_of(c.kind)
  AND c.signal_end + episode_settle_after() >= getvariable('episode_rewind_to')
GROUP BY c.kind;

DELETE FROM episode_clusters c USING episode_reopened r WHERE c.kind = r.kind AND c.signal_start >= r.start;

INSERT OR REPLACE INTO episode_state
SELECT s.kind, least(s.frontier, getvariable('episode_rewind_to'), coalesce(r.start, s.frontier))
FROM episode_state s LEFT JOIN episode_reopened r USING (kind);

DROP TABLE episode_reopened;
