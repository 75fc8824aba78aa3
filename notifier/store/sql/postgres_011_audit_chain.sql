-- The audit log becomes a hash chain (notifier/store/audit_chain.py defines the canonical form): every entry
-- keeps the hash of the one before (prev_hash; 64 zeros for the first) and its own. The store computes each
-- hash in Python when it appends. A PostgreSQL database runs every migration at once on an empty
-- audit_log (there was no PostgreSQL dialect before this chain), so there are no earlier entries to chain
-- here; a table that has some is refused rather than left unchained.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_log) THEN
        RAISE EXCEPTION 'audit_log has entries written before the hash chain; chain them with the SQLite migration';
    END IF;
END;
$$;

ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;

-- sha256_hex(text): the lower-case hex SHA-256 of the text's UTF-8 bytes, as SQLite's registered function
CREATE FUNCTION sha256_hex(value TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT encode(sha256(convert_to(value, 'UTF8')), 'hex')
$$;

CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
