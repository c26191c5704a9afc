-- Misses by inferred cause in [from, until), with their share and the top symbols of each.
-- One pass over the period's misses, counted by cause and symbol; each cause's count and top
-- five symbols come from those counts (a second scan of the misses and a numbering of the
-- symbols within each cause took twice as long at 100M lines).
WITH by_symbol AS (
    SELECT cause, symbol, count(*) AS misses
    FROM miss_causes
    WHERE ts >= CAST(? AS TIMESTAMP) AND ts < CAST(? AS TIMESTAMP)
    GROUP BY cause, symbol
),
by_cause AS (
    SELECT cause, sum(misses)::BIGINT AS misses,
           list(symbol ORDER BY misses DESC, symbol)[1:5] AS top_symbols,
           list(misses ORDER BY misses DESC, symbol)[1:5] AS top_symbol_misses
    FROM by_symbol
    GROUP BY cause
)
SELECT cause, misses, misses / sum(misses) OVER () AS share, top_symbols, top_symbol_misses
FROM by_cause
ORDER BY misses DESC, cause;
