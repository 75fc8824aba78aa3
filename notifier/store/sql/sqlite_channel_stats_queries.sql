-- Named SQL blocks of the console's channels page (SQLite): per alias, what waits, what went out, what failed.
-- Resident and area deliveries alike; times are the stored RFC 3339 UTC text, so a minute is its first 16 chars.

-- Each reads its rows through an index (tests/engine/test_query_plans.py), never the whole table.

-- name: channel_queue
-- The queued rows through deliveries_claim (alias is its first column), the rows being sent through
-- deliveries_leases (the batches in flight): one state each, as the partial indexes hold them.
SELECT alias, 'queued' AS state, COUNT(*) AS n FROM deliveries WHERE state = 'queued' GROUP BY alias
UNION ALL
SELECT alias, 'sending' AS state, COUNT(*) AS n FROM deliveries WHERE state = 'sending' GROUP BY alias;

-- name: channel_sent_per_minute
-- Through deliveries_sent (sqlite_032_channel_stats_indexes.sql): the window's sends only
SELECT alias, substr(sent_at, 1, 16) AS minute, COUNT(*) AS n FROM deliveries
WHERE sent_at >= :since AND sent_at IS NOT NULL GROUP BY 1, 2;

-- name: channel_errors
-- Deliveries changed since :since that carry an error: failed ones, and queued ones waiting for a retry.
-- Through deliveries_errors (sqlite_032_channel_stats_indexes.sql): the rows with an error changed since :since.
SELECT alias, state, last_error, COUNT(*) AS n FROM deliveries
WHERE last_error IS NOT NULL AND updated_at >= :since GROUP BY 1, 2, 3
LIMIT 5000;
