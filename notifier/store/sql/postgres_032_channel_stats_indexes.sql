-- The console's channels page (sqlite_channel_stats_queries.sql, run here as it is) read every delivery ever
-- made: its sends per minute and its errors of the last hour now come through an index of their own, as on
-- SQLite (sqlite_032_channel_stats_indexes.sql). A send writes one entry in deliveries_sent (sent_at is set
-- once, when the gateway takes the message); only a delivery that carries an error has an entry in
-- deliveries_errors. The queue is read through deliveries_claim (queued) and deliveries_leases (sending).
CREATE INDEX deliveries_sent ON deliveries (sent_at, alias) WHERE sent_at IS NOT NULL;
CREATE INDEX deliveries_errors ON deliveries (updated_at) WHERE last_error IS NOT NULL;
