-- Named SQL blocks of the resident pages (SQLite). Request timing is epoch seconds (:now).

-- name: web_village
-- A village with the names of its town and county (NULL when the tree above it is incomplete).
SELECT v.code, v.name AS village, t.name AS town, c.name AS county
FROM areas v LEFT JOIN areas t ON t.code = v.parent LEFT JOIN areas c ON c.code = t.parent
WHERE v.code = :code AND v.level = 'village';

-- name: web_topics
SELECT code, name FROM topics ORDER BY id;

-- name: count_subscription_requests
-- Codes sent to one phone in the last minute and day, and from one client address in the last hour.
SELECT
    (SELECT COUNT(*) FROM subscription_requests WHERE phone = :phone AND created_at > :minute_ago) AS phone_minute,
    (SELECT COUNT(*) FROM subscription_requests WHERE phone = :phone AND created_at > :day_ago) AS phone_day,
    (SELECT COUNT(*) FROM subscription_requests WHERE client_ip = :client_ip AND created_at > :hour_ago) AS ip_hour;

-- name: insert_subscription_request
INSERT INTO subscription_requests (phone, name, area_code, topics, client_ip, code_hash, max_attempts,
                                   created_at, expires_at)
VALUES (:phone, :name, :area_code, :topics, :client_ip, :code_hash, :max_attempts, :now, :expires_at)
RETURNING id;

-- name: get_subscription_request
SELECT * FROM subscription_requests WHERE id = :id;

-- name: mark_subscription_request_unsent
UPDATE subscription_requests SET state = 'unsent' WHERE id = :id AND state = 'pending';

-- name: count_subscription_attempt
-- One wrong code, counted only while the request can still be confirmed; returns the new count.
UPDATE subscription_requests SET attempts = attempts + 1
WHERE id = :id AND state = 'pending' AND attempts < max_attempts AND expires_at > :now
RETURNING attempts, max_attempts;

-- name: confirm_subscription_request
-- Claims a live request once: a second confirmation (a double tap) changes nothing.
UPDATE subscription_requests SET state = 'confirmed', confirmed_at = :now
WHERE id = :id AND state = 'pending' AND attempts < max_attempts AND expires_at > :now;

-- name: set_subscription_request_subscriber
UPDATE subscription_requests SET subscriber_id = :subscriber_id WHERE id = :id;

-- name: purge_subscription_requests
DELETE FROM subscription_requests WHERE created_at < :before;
