-- Named SQL blocks of the resident pages (SQLite). Request timing is epoch seconds (:now).

-- name: web_village
-- A village with the names of its town and county (NULL when the tree above it is incomplete).
SELECT v.code, v.name AS village, t.name AS town, c.name AS county
FROM areas v LEFT JOIN areas t ON t.code = v.parent LEFT JOIN areas c ON c.code = t.parent
WHERE v.code = :code AND v.level = 'village';

-- name: web_town
-- A town with its county's name, and its villages (code, name) in code order, as JSON.
SELECT t.code, t.name AS town, c.name AS county,
       (SELECT json_group_array(json_object('code', v.code, 'name', v.name))
        FROM (SELECT code, name FROM areas WHERE parent = t.code AND level = 'village' ORDER BY code) v) AS villages
FROM areas t LEFT JOIN areas c ON c.code = t.parent
WHERE t.code = :code AND t.level = 'town';

-- name: find_subscriber_by_email
SELECT id FROM subscribers WHERE lower(email) = :email AND deleted_at IS NULL;

-- name: web_topics
SELECT code, name FROM topics ORDER BY id;

-- name: lock_code_requests
-- Taken first by the transaction that counts a resident's code requests and adds one. On SQLite, BEGIN IMMEDIATE
-- already lets one writer in at a time, so there is nothing more to lock (PostgreSQL takes advisory locks).
SELECT 1;

-- name: count_subscription_requests
-- Codes or links sent to one address (phone or e-mail) in the last minute and day, and from one client
-- address in the last hour. :variants (NULL for a phone) matches the e-mail address's +tag variants.
SELECT
    (SELECT COUNT(*) FROM subscription_requests WHERE (address = :address OR address LIKE :variants ESCAPE '\')
        AND created_at > :minute_ago) AS phone_minute,
    (SELECT COUNT(*) FROM subscription_requests WHERE (address = :address OR address LIKE :variants ESCAPE '\')
        AND created_at > :day_ago) AS phone_day,
    (SELECT COUNT(*) FROM subscription_requests WHERE client_ip = :client_ip AND created_at > :hour_ago) AS ip_hour;

-- name: insert_subscription_request
INSERT INTO subscription_requests (purpose, channel, address, name, area_code, topics, client_ip, code_hash,
                                   max_attempts, created_at, expires_at, subscriber_id)
VALUES (:purpose, :channel, :address, :name, :area_code, :topics, :client_ip, :code_hash, :max_attempts, :now,
        :expires_at, :subscriber_id)
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

-- name: purge_direct_messages
DELETE FROM direct_messages WHERE created_at < :before;

-- name: insert_direct_message
INSERT INTO direct_messages (purpose, request_id, channel, alias, address, subject, text, html, due_at, deadline,
                             created_at)
VALUES (:purpose, :request_id, :channel, :alias, :address, :subject, :text, :html, :now, :deadline, :now)
RETURNING id;

-- name: claim_direct_messages
-- Due messages of an alias, and those whose worker's lease ran out (it died mid-send), oldest first.
UPDATE direct_messages SET state = 'sending', lease_until = :lease_until, leased_by = :worker,
    attempts = attempts + 1
WHERE id IN (
    SELECT id FROM direct_messages
    WHERE alias = :alias AND ((state = 'queued' AND due_at <= :now) OR (state = 'sending' AND lease_until < :now))
    ORDER BY due_at, id
    LIMIT :limit)
RETURNING id, purpose, request_id, channel, alias, address, subject, text, html, attempts, deadline;

-- name: direct_message_sent
UPDATE direct_messages SET state = 'sent', provider_message_id = :provider_message_id, sent_at = :now,
    lease_until = NULL, leased_by = NULL, last_error = NULL, text = '', html = NULL
WHERE id = :id AND state = 'sending' AND leased_by = :worker;

-- name: requeue_direct_message
UPDATE direct_messages SET state = 'queued', alias = :alias, due_at = :due_at, lease_until = NULL,
    leased_by = NULL, last_error = :error
WHERE id = :id AND state = 'sending' AND leased_by = :worker;

-- name: direct_message_failed
UPDATE direct_messages SET state = 'failed', lease_until = NULL, leased_by = NULL, last_error = :error,
    text = '', html = NULL
WHERE id = :id AND state = 'sending' AND leased_by = :worker;

-- name: get_direct_message
SELECT * FROM direct_messages WHERE id = :id;

-- name: direct_messages_of_request
SELECT * FROM direct_messages WHERE request_id = :request_id ORDER BY id;
