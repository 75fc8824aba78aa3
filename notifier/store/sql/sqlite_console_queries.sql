-- Named SQL blocks of the staff console's accounts, sessions and login throttle (SQLite).

-- name: insert_staff_account
INSERT INTO staff_accounts (login, name, department, role, key_id, password_hash, must_change_password, created_at)
VALUES (:login, :name, :department, :role, :key_id, :password_hash, 1, :now)
RETURNING id;

-- name: set_staff_login
UPDATE staff_accounts SET login = :login WHERE id = :id;

-- name: get_staff_by_login
SELECT s.*, k.revoked_at AS key_revoked_at FROM staff_accounts s JOIN api_keys k ON k.id = s.key_id
WHERE s.login = :login;

-- name: get_staff_by_id
SELECT s.*, k.revoked_at AS key_revoked_at FROM staff_accounts s JOIN api_keys k ON k.id = s.key_id
WHERE s.id = :id;

-- name: staff_login_taken
SELECT 1 FROM staff_accounts WHERE login = :login;

-- name: set_staff_password
UPDATE staff_accounts SET password_hash = :password_hash, must_change_password = 0, password_changed_at = :now
WHERE id = :id;

-- name: insert_staff_session
INSERT INTO staff_sessions (token_hash, staff_id, csrf_token, created_at, last_seen_at, expires_at)
VALUES (:token_hash, :staff_id, :csrf_token, :now, :now, :expires_at);

-- name: get_staff_session
SELECT * FROM staff_sessions WHERE token_hash = :token_hash AND expires_at > :now;

-- name: touch_staff_session
UPDATE staff_sessions SET last_seen_at = :now WHERE token_hash = :token_hash;

-- name: delete_staff_session
DELETE FROM staff_sessions WHERE token_hash = :token_hash;

-- name: delete_other_staff_sessions
DELETE FROM staff_sessions WHERE staff_id = :staff_id AND token_hash != :token_hash;

-- name: delete_expired_staff_sessions
DELETE FROM staff_sessions WHERE expires_at <= :now;

-- name: insert_staff_login_attempt
INSERT INTO staff_login_attempts (login, client_ip, succeeded, at) VALUES (:login, :client_ip, :succeeded, :now);

-- name: count_staff_login_failures
-- Failed attempts since :since for one login name and from one client address, each counted only after the
-- last success of that name (a successful login clears the name's count, not the address's).
SELECT
    (SELECT COUNT(*) FROM staff_login_attempts
     WHERE login = :login AND succeeded = 0 AND at > :since
       AND at > COALESCE((SELECT MAX(at) FROM staff_login_attempts WHERE login = :login AND succeeded = 1), 0))
        AS by_login,
    (SELECT COUNT(*) FROM staff_login_attempts WHERE client_ip = :client_ip AND succeeded = 0 AND at > :since)
        AS by_client;

-- name: console_key_names
-- Who an API key id is, for pages that show authors and deciders: the key's name and, for a console
-- account's key, the person's name.
SELECT k.id, k.name AS key_name, s.name AS staff_name, s.id AS staff_id
FROM api_keys k LEFT JOIN staff_accounts s ON s.key_id = k.id
WHERE k.id IN (SELECT value FROM json_each(:ids));

-- name: console_staff_names
SELECT id, name FROM staff_accounts WHERE id IN (SELECT value FROM json_each(:ids));
