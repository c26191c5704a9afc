SELECT file_id, path, paths, dev, inode, format, byte_offset, line_no, tail_hash, events, quarantined
FROM ingest_files;
