-- Area deliveries: one (notice, area, channel kind) for the channel kinds that reach an area rather
-- than a resident: `bot` (the area's resident group robot) and `bulletin` (a printout for the
-- area's notice board). The recipient is the area code.
--
-- A table of its own, not `deliveries` with a nullable subscriber_id: SQLite cannot drop NOT NULL
-- without rebuilding `deliveries` (its indexes, and the `receipts` foreign key that points at it),
-- and every resident query (fallback to the next channel, reach, the deliveries list, the
-- UNIQUE (notice, subscriber, channel) key) would have to learn to skip rows without a resident.
-- The queue columns are the same as in `deliveries`, so claiming, leasing, retrying and recording
-- follow the same rules through parallel named queries (sqlite_area_queries.sql); a printout never
-- falls back to a resident channel and a bot post never needs a receipt, so nothing else is shared.

CREATE TABLE area_deliveries (
    id                  INTEGER PRIMARY KEY,
    notice_id           INTEGER NOT NULL REFERENCES notices (id),
    area_code           TEXT NOT NULL REFERENCES areas (code),
    channel             TEXT NOT NULL,          -- channel kind: bot, bulletin
    alias               TEXT,                   -- configured channel that sends it
    state               TEXT NOT NULL,          -- queued, sending, sent, delivered, failed, skipped
    priority            INTEGER NOT NULL DEFAULT 0,
    attempts            INTEGER NOT NULL DEFAULT 0,
    due_at              REAL,                   -- queued: send time; sent: next poll of the print job
    deadline            REAL,                   -- the notice's expires_at, epoch seconds
    poll_until          REAL,                   -- sent: stop asking for the job's state after this
    lease_until         REAL,
    leased_by           TEXT,
    provider_message_id TEXT,
    last_error          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    sent_at             TEXT,
    delivered_at        TEXT,
    UNIQUE (notice_id, area_code, channel)
);
CREATE INDEX area_deliveries_claim ON area_deliveries (alias, priority DESC, due_at) WHERE state = 'queued';
CREATE INDEX area_deliveries_leases ON area_deliveries (lease_until) WHERE state = 'sending';
CREATE INDEX area_deliveries_polls ON area_deliveries (due_at) WHERE state = 'sent' AND due_at IS NOT NULL;
CREATE INDEX area_deliveries_active ON area_deliveries (notice_id) WHERE state = 'queued' OR state = 'sending';
