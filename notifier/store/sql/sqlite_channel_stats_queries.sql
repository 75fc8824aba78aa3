-- Named SQL blocks of the console's channels page (SQLite): per alias, what waits, what went out, what failed.
-- Resident and area deliveries alike; times are the stored RFC 3339 UTC text, so a minute is its first 16 chars.

-- name: channel_queue
SELECT alias, state, COUNT(*) AS n FROM deliveries WHERE state IN ('queued', 'sending') GROUP BY 1, 2;

-- name: channel_sent_per_minute
SELECT alias, substr(sent_at, 1, 16) AS minute, COUNT(*) AS n FROM deliveries WHERE sent_at >= :since GROUP BY 1, 2;

-- name: channel_errors
-- Deliveries changed since :since that carry an error: failed ones, and queued ones waiting for a retry.
SELECT alias, state, last_error, COUNT(*) AS n FROM deliveries
WHERE last_error IS NOT NULL AND updated_at >= :since GROUP BY 1, 2, 3
LIMIT 5000;
