-- One delivery queue: a delivery's target is a resident (subscriber_id, the message to their address) or an
-- area (area_code, kinds `bot` and `bulletin`: a group post or a notice-board printout, whose recipient is the
-- area code). Exactly one of the two is set. Claiming, leasing, retrying, recording and taking leases back
-- are then one set of statements over one table, instead of the parallel `area_deliveries` queue of
-- migration 003; queries about residents only say so (`subscriber_id IS NOT NULL`, or a join on subscribers).
--
-- SQLite cannot drop NOT NULL from subscriber_id in place, so `deliveries` is rebuilt: its rows (with their
-- ids, which receipts and signed confirm links name) and the area deliveries (new ids after them) are copied
-- into the new table. `receipts` points at `deliveries`, so its rows are set aside while the old table is
-- dropped and put back after, unchanged; foreign keys stay on throughout.

CREATE TEMP TABLE deliveries_024 AS SELECT * FROM deliveries;
CREATE TEMP TABLE receipts_024 AS SELECT * FROM receipts;
DELETE FROM receipts;
DROP TABLE deliveries;

CREATE TABLE deliveries (
    id                  INTEGER PRIMARY KEY,
    notice_id           INTEGER NOT NULL REFERENCES notices (id),
    subscriber_id       INTEGER REFERENCES subscribers (id),  -- a resident's delivery
    area_code           TEXT REFERENCES areas (code),         -- an area's delivery (bot, bulletin)
    channel             TEXT NOT NULL,          -- channel kind
    alias               TEXT,                   -- configured channel that sends it
    rank                INTEGER NOT NULL DEFAULT 0, -- position in the resident's fallback chain
    state               TEXT NOT NULL,
    priority            INTEGER NOT NULL DEFAULT 0,
    attempts            INTEGER NOT NULL DEFAULT 0,
    due_at              REAL,                   -- queued: send time; sent: confirm-by (resident) or next
                                                -- poll of the print job (area)
    deadline            REAL,                   -- the notice's expires_at, epoch seconds
    poll_until          REAL,                   -- area, sent: stop asking for the job's state after this
    lease_until         REAL,
    leased_by           TEXT,
    address             TEXT,                   -- the recipient: the resident's address, or the area code
    content             TEXT,
    provider_message_id TEXT,
    last_error          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    sent_at             TEXT,
    delivered_at        TEXT,
    confirmed_at        TEXT,
    CHECK ((subscriber_id IS NULL) <> (area_code IS NULL)),
    UNIQUE (notice_id, subscriber_id, channel)
);

INSERT INTO deliveries (id, notice_id, subscriber_id, area_code, channel, alias, rank, state, priority, attempts,
                        due_at, deadline, poll_until, lease_until, leased_by, address, content, provider_message_id,
                        last_error, created_at, updated_at, sent_at, delivered_at, confirmed_at)
SELECT id, notice_id, subscriber_id, NULL, channel, alias, rank, state, priority, attempts,
       due_at, deadline, NULL, lease_until, leased_by, address, content, provider_message_id,
       last_error, created_at, updated_at, sent_at, delivered_at, confirmed_at
FROM temp.deliveries_024 ORDER BY id;

INSERT INTO deliveries (notice_id, subscriber_id, area_code, channel, alias, rank, state, priority, attempts,
                        due_at, deadline, poll_until, lease_until, leased_by, address, provider_message_id,
                        last_error, created_at, updated_at, sent_at, delivered_at)
SELECT notice_id, NULL, area_code, channel, alias, 0, state, priority, attempts,
       due_at, deadline, poll_until, lease_until, leased_by, area_code, provider_message_id,
       last_error, created_at, updated_at, sent_at, delivered_at
FROM area_deliveries ORDER BY id;

INSERT INTO receipts (id, delivery_id, alias, provider_message_id, status, detail, received_at)
SELECT id, delivery_id, alias, provider_message_id, status, detail, received_at FROM temp.receipts_024 ORDER BY id;

DROP TABLE temp.deliveries_024;
DROP TABLE temp.receipts_024;
DROP TABLE area_deliveries;

-- one area delivery per (notice, area, kind), as one resident delivery per (notice, resident, kind)
CREATE UNIQUE INDEX deliveries_area ON deliveries (notice_id, area_code, channel) WHERE area_code IS NOT NULL;
-- the claim scans queued rows of one alias by priority then due time
CREATE INDEX deliveries_claim ON deliveries (alias, priority DESC, due_at) WHERE state = 'queued';
CREATE INDEX deliveries_leases ON deliveries (lease_until) WHERE state = 'sending';
CREATE INDEX deliveries_leased_by ON deliveries (leased_by) WHERE state = 'sending';
-- sent messages with a time to look at them again: a resident's confirm-by, an area's next print-job poll
CREATE INDEX deliveries_unconfirmed ON deliveries (due_at) WHERE state = 'sent' AND due_at IS NOT NULL;
CREATE INDEX deliveries_provider_id ON deliveries (alias, provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);
CREATE INDEX deliveries_active ON deliveries (notice_id) WHERE state = 'queued' OR state = 'sending';
