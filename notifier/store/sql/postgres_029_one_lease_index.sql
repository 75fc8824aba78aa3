-- The leases of deliveries in one index instead of two (deliveries_leases on lease_until, deliveries_leased_by
-- on leased_by, both over the rows being sent): every claim wrote an entry in each. The rows being sent are
-- found by the worker that leased them (release_worker_leases, record_sent: the leading column) and by the
-- lease's end (recover_leases: lease_until checked in the index, which holds only the rows being sent, at most
-- the batches in flight). SQLite keeps the two (sqlite_029_one_lease_index.sql says why).
DROP INDEX deliveries_leases;
DROP INDEX deliveries_leased_by;
CREATE INDEX deliveries_leases ON deliveries (leased_by, lease_until) WHERE state = 'sending';
