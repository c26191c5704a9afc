-- Applies a batch staged in temp.manifest_stage / temp.symbols_stage (one transaction).
DELETE FROM manifest WHERE key IN (SELECT key FROM temp.manifest_stage);
INSERT INTO manifest SELECT * FROM temp.manifest_stage;
INSERT INTO seen_symbols
    SELECT s.symbol, min(s.first_seen) FROM temp.symbols_stage s
    WHERE s.symbol NOT IN (SELECT symbol FROM seen_symbols)
    GROUP BY s.symbol;
DELETE FROM temp.manifest_stage;
DELETE FROM temp.symbols_stage;
