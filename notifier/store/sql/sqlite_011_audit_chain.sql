-- The audit log becomes a hash chain (notifier/store/audit_chain.py defines the canonical form): every entry
-- keeps the hash of the one before (prev_hash; 64 zeros for the first) and its own. Entries written before
-- this version are chained here, in id order, with the same canonical form (SQLite's json_array writes it)
-- and sha256_hex, which the store registers on its connections.

ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;

CREATE TEMP TABLE audit_chain_upgrade AS
WITH RECURSIVE chain (id, prev_hash, hash) AS (
    SELECT id, '0000000000000000000000000000000000000000000000000000000000000000',
           sha256_hex(json_array(id, at, actor, action, object_type, object_id, detail,
                                 '0000000000000000000000000000000000000000000000000000000000000000'))
    FROM audit_log WHERE id = (SELECT MIN(id) FROM audit_log)
    UNION ALL
    SELECT a.id, chain.hash,
           sha256_hex(json_array(a.id, a.at, a.actor, a.action, a.object_type, a.object_id, a.detail, chain.hash))
    FROM chain JOIN audit_log AS a ON a.id = (SELECT MIN(id) FROM audit_log WHERE id > chain.id)
)
SELECT id, prev_hash, hash FROM chain;

DROP TRIGGER audit_log_no_update;
UPDATE audit_log SET prev_hash = c.prev_hash, hash = c.hash FROM audit_chain_upgrade AS c WHERE c.id = audit_log.id;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
DROP TABLE audit_chain_upgrade;

CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
