SELECT symbol FROM seen_symbols ORDER BY symbol;
