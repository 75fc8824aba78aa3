-- PostgreSQL blocks replacing the SQLite blocks of the same name in sqlite_console_queries.sql (docs/storage.md,
-- "Two dialects").

-- name: lock_active_staff_admins
-- written for sqlite c75771c51256
-- Locked in id order until the transaction ends: a concurrent disabling of an admin waits here, and once the first
-- commits, PostgreSQL re-reads the rows it changed, so the account it disabled is no longer counted.
SELECT s.id FROM staff_accounts s JOIN api_keys k ON k.id = s.key_id
WHERE s.role = :role AND s.disabled_at IS NULL AND k.revoked_at IS NULL
ORDER BY s.id
FOR UPDATE OF s;
