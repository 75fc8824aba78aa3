-- Fewer index entries for a claim and its record to write (each claim of 100 wrote 500 and its record 400).
-- The leases in one index, as on PostgreSQL (postgres_029_one_lease_index.sql): deliveries_leases on
-- (leased_by, lease_until) over the rows being sent, in place of one index on each column; a claim writes one
-- entry there instead of two, its record deletes one instead of two.
-- The notices with work left are found through their queued deliveries only: deliveries_active (notice_id)
-- over the rows queued or sending became deliveries_queued (notice_id) over the queued rows. A claim rewrote
-- its entry in deliveries_active (sending is active too) and the record deleted it; now the claim deletes it and
-- the record has nothing to do there. The rows being sent of a notice are looked for in deliveries_leases,
-- which holds only the batches in flight (finish_notices, notice_to_finish).
-- Before, SQLite's planner answered recover_leases on an index of leased_by alone by scanning
-- deliveries_active, every queued delivery (sqlite_029_one_lease_index.sql); with deliveries_active gone,
-- deliveries_leases is the only index that holds the rows being sent, and tests/engine/test_query_plans.py
-- checks that every reader of these rows goes through it.
DROP INDEX deliveries_leases;
DROP INDEX deliveries_leased_by;
DROP INDEX deliveries_active;
CREATE INDEX deliveries_leases ON deliveries (leased_by, lease_until) WHERE state = 'sending';
CREATE INDEX deliveries_queued ON deliveries (notice_id) WHERE state = 'queued';
