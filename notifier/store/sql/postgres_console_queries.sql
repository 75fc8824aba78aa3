-- PostgreSQL blocks replacing the SQLite blocks of the same name in sqlite_console_queries.sql (docs/storage.md, "Two dialects").

-- name: console_notice_failures
-- Failed deliveries of a notice by channel kind and reason, resident and area ones together.
SELECT channel, reason, SUM(n) AS n FROM (
    SELECT channel, COALESCE(last_error, '') AS reason, COUNT(*) AS n FROM deliveries
    WHERE notice_id = :notice_id AND state = 'failed' GROUP BY channel, reason
    UNION ALL
    SELECT channel, COALESCE(last_error, '') AS reason, COUNT(*) AS n FROM area_deliveries
    WHERE notice_id = :notice_id AND state = 'failed' GROUP BY channel, reason
) AS failed GROUP BY channel, reason ORDER BY n DESC, channel, reason LIMIT 100;
