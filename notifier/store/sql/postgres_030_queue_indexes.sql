-- Nothing to do on PostgreSQL. SQLite merges its two lease indexes here into deliveries_leases on
-- (leased_by, lease_until), which PostgreSQL has had since 029, and narrows deliveries_active to the queued
-- rows (deliveries_queued); the queries that read those (finish_notices, notice_to_finish: queued and sending
-- rows of a notice looked for apart) are planned on PostgreSQL's deliveries_active (queued or sending) and
-- deliveries_leases as before (sqlite_030_queue_indexes.sql). SELECT 1: a script of comments alone fails.
SELECT 1;
