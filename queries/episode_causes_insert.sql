INSERT INTO episode_causes (cause, kind) VALUES (?, ?);
