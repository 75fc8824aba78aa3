-- PostgreSQL blocks replacing the SQLite blocks of the same name in sqlite_queries.sql (docs/storage.md, "Two
-- dialects").

-- name: lock_audit_chain
-- written for sqlite 7ce750fbcd95
-- One appender at a time extends the audit chain (transactions run side by side on PostgreSQL, and two that
-- read the same last entry would fork it); released at the end of the transaction. The key is the bytes of "auditlog".
SELECT pg_advisory_xact_lock(7022629598041763687);
