-- The console's channels page (sqlite_channel_stats_queries.sql) read every delivery ever made three times a
-- load: its sends per minute and its errors of the last hour now come through an index of their own. A send
-- writes one entry in deliveries_sent (sent_at is set once, when the gateway takes the message); only a
-- delivery that carries an error has an entry in deliveries_errors. alias rides along in deliveries_sent, so
-- the count per alias and minute reads the index alone. The queue (queued and sending rows) is read through
-- deliveries_claim and deliveries_leases, which hold those rows already.
CREATE INDEX deliveries_sent ON deliveries (sent_at, alias) WHERE sent_at IS NOT NULL;
CREATE INDEX deliveries_errors ON deliveries (updated_at) WHERE last_error IS NOT NULL;
