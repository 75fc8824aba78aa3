-- Worker heartbeats. Each engine (one per process) registers here and beats every
-- engine.heartbeat_seconds; the leases it takes (deliveries.leased_by, area_deliveries.leased_by,
-- notices.fanout_by) name it. A worker that has missed a few beats is dead: its leases are taken back
-- at once instead of being waited out, and a worker that stops cleanly gives its own back and leaves.
CREATE TABLE workers (
    id          TEXT PRIMARY KEY,       -- host:pid:random, as the leases name it
    started_at  TEXT NOT NULL,
    beat_at     DOUBLE PRECISION NOT NULL           -- epoch seconds of the last heartbeat
);

-- the leases of one worker, to give them back
CREATE INDEX deliveries_leased_by ON deliveries (leased_by) WHERE state = 'sending';
CREATE INDEX area_deliveries_leased_by ON area_deliveries (leased_by) WHERE state = 'sending';

-- receipts kept before their send was recorded, looked up by the alias and the message id they carry
CREATE INDEX receipts_unmatched ON receipts (alias, provider_message_id) WHERE delivery_id IS NULL;
