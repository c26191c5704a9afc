-- Makes the attached events database (queries/ingest_attach.sql) a connection's default.
USE cachescope;
