-- Episodes, at a commit: the earliest of the transaction's rows an episode is found from,
-- when it comes before some kind's frontier (a late line: an archive read after its
-- successor, a second log); no row otherwise.
WITH n AS (SELECT min(ts) AS first_new FROM classify_batch WHERE episode_event(event))
SELECT n.first_new FROM n
WHERE n.first_new < (SELECT max(frontier) FROM episode_state);
