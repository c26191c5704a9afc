-- Recomputes the evaluations whose window holds a minute a commit added to (staged in
-- `evaluations_stage`): the five after each such minute's start. Figures only grow, so no
-- evaluation has to go. Late minutes are exact like the others.
INSERT OR REPLACE INTO evaluations_5m
SELECT e.*
FROM evaluations_5m_of((SELECT min(minute) + INTERVAL 1 MINUTE FROM evaluations_stage),
                       (SELECT max(minute) + INTERVAL 5 MINUTE FROM evaluations_stage)) e
WHERE e.eval_time IN (SELECT s.minute + to_minutes(k.k) FROM evaluations_stage s, range(1, 6) k(k));
DELETE FROM evaluations_stage;
