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

-- name: list_staff_accounts
SELECT s.*, k.revoked_at AS key_revoked_at FROM staff_accounts s JOIN api_keys k ON k.id = s.key_id
WHERE (:department IS NULL OR s.department = :department) ORDER BY s.department, s.login;

-- name: disable_staff_account
UPDATE staff_accounts SET disabled_at = :now WHERE id = :id AND disabled_at IS NULL;

-- name: lock_active_staff_admins
-- the admin accounts that can still sign in (not disabled, key not revoked); PostgreSQL locks their rows
SELECT s.id FROM staff_accounts s JOIN api_keys k ON k.id = s.key_id
WHERE s.role = :role AND s.disabled_at IS NULL AND k.revoked_at IS NULL
ORDER BY s.id;

-- name: reset_staff_password
UPDATE staff_accounts SET password_hash = :password_hash, must_change_password = 1, password_changed_at = :now
WHERE id = :id;

-- name: delete_staff_sessions
DELETE FROM staff_sessions WHERE staff_id = :staff_id;

-- name: hold_staff_password
-- the account's row, locked for the transaction, while it still has the password just checked and is not disabled
UPDATE staff_accounts SET password_hash = password_hash
WHERE id = :id AND password_hash = :password_hash AND disabled_at IS NULL;

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

-- name: purge_staff_login_attempts
-- Attempts carry the client's address: kept a day, far beyond the throttle's window.
DELETE FROM staff_login_attempts WHERE at < :before;

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

-- name: console_notice_towns
-- A notice's resident deliveries per town (the first 9 digits of the resident's area): residents with a
-- delivery, residents reached (sent or delivered, as notice_reached counts), deliveries waiting, failed, skipped.
SELECT substr(s.area_code, 1, 9) AS town,
       COUNT(DISTINCT d.subscriber_id) AS residents,
       COUNT(DISTINCT CASE WHEN d.state IN ('sent', 'delivered') THEN d.subscriber_id END) AS reached,
       SUM(d.state IN ('queued', 'sending')) AS waiting,
       SUM(d.state = 'failed') AS failed,
       SUM(d.state = 'skipped') AS skipped
FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
WHERE d.notice_id = :notice_id
GROUP BY town ORDER BY town;

-- name: console_notice_failures
-- Failed deliveries of a notice by channel kind and reason, resident and area ones together.
SELECT channel, COALESCE(last_error, '') AS reason, COUNT(*) AS n FROM deliveries
WHERE notice_id = :notice_id AND state = 'failed'
GROUP BY channel, reason ORDER BY n DESC, channel, reason LIMIT 100;

-- name: console_notice_printouts
-- The notice-board printouts of a notice, one per village (or town), with the print job's id and state.
SELECT ad.area_code, a.name AS area_name, t.name AS town_name, ad.alias, ad.state, ad.attempts,
       ad.provider_message_id AS job, ad.last_error, ad.updated_at
FROM deliveries ad
LEFT JOIN areas a ON a.code = ad.area_code LEFT JOIN areas t ON t.code = a.parent
WHERE ad.notice_id = :notice_id AND ad.channel = 'bulletin' AND ad.area_code IS NOT NULL
ORDER BY ad.area_code LIMIT 2000;

-- name: console_notice_waiting
-- Deliveries of a notice still to be sent (resident and area ones), and printouts whose print job is still
-- being asked after (sent, with a next poll).
SELECT COUNT(*) AS waiting FROM deliveries
WHERE notice_id = :notice_id
  AND (state IN ('queued', 'sending') OR (state = 'sent' AND due_at IS NOT NULL AND area_code IS NOT NULL));
