-- How the ingester opens the events database (the path is the parameter): attached rather
-- than opened, for the one storage option DuckDB takes only on ATTACH. Row groups of 64k
-- rows instead of DuckDB's 122,880: a row group of `event_rows` (300-byte raw lines) is
-- then written to the file before it outgrows the 64 MB memory limit, instead of spilling
-- to a temporary file and being read back (measured: a mixed log ~5% faster; a log of only
-- non-hit lines ~14% faster in ~20 MB less memory; BENCHMARKS.md). Readers need nothing
-- special: it is an ordinary DuckDB file.
ATTACH ? AS cachescope (ROW_GROUP_SIZE 65536);
