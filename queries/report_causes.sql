-- Misses by inferred cause in [from, until), with their share and the top symbols of each.
WITH m AS (
    SELECT cause, symbol FROM miss_causes
    WHERE ts >= CAST(? AS TIMESTAMP) AND ts < CAST(? AS TIMESTAMP)
),
by_cause AS (SELECT cause, count(*) AS misses FROM m GROUP BY cause),
by_symbol AS (
    SELECT cause, symbol, count(*) AS misses,
           row_number() OVER (PARTITION BY cause ORDER BY count(*) DESC, symbol) AS rank
    FROM m GROUP BY cause, symbol
)
SELECT c.cause, c.misses, c.misses / sum(c.misses) OVER () AS share,
       (SELECT list(s.symbol ORDER BY s.rank) FROM by_symbol s WHERE s.cause = c.cause AND s.rank <= 5) AS top_symbols,
       (SELECT list(s.misses ORDER BY s.rank) FROM by_symbol s WHERE s.cause = c.cause AND s.rank <= 5) AS top_symbol_misses
FROM by_cause c
ORDER BY c.misses DESC, c.cause;
