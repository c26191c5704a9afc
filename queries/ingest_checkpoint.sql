-- Records how far one file was read; runs in the same transaction as the rows read up to it.
INSERT INTO ingest_files (file_id, path, paths, dev, inode, format, byte_offset, line_no,
                          tail_hash, events, quarantined, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (file_id) DO UPDATE SET
    path = excluded.path, paths = excluded.paths, dev = excluded.dev, inode = excluded.inode,
    format = excluded.format, byte_offset = excluded.byte_offset, line_no = excluded.line_no,
    tail_hash = excluded.tail_hash, events = excluded.events, quarantined = excluded.quarantined,
    updated_at = excluded.updated_at;
