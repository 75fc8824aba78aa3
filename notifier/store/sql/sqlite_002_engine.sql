-- Delivery engine: resumable fan-out, rendered messages, claim indexes, scheduled jobs.

-- fan-out progress: the last subscriber id fanned out, and a lease so one process fans a notice out
ALTER TABLE notices ADD COLUMN fanout_cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notices ADD COLUMN fanout_lease_until REAL;
ALTER TABLE notices ADD COLUMN fanout_by TEXT;
-- residents the target matched but who get no message (opted out, consent withdrawn, no address)
ALTER TABLE notices ADD COLUMN skipped INTEGER;

-- the notice's expires_at in epoch seconds, copied to each delivery so workers compare numbers
ALTER TABLE deliveries ADD COLUMN deadline REAL;

-- the text of a notice rendered once per channel kind at fan-out; every delivery and retry sends it
CREATE TABLE rendered_messages (
    notice_id INTEGER NOT NULL REFERENCES notices (id),
    channel   TEXT NOT NULL,
    content   TEXT NOT NULL,          -- JSON {"subject", "text", "html"}
    PRIMARY KEY (notice_id, channel)
);

-- the claim scans queued rows of one alias by priority then due time
DROP INDEX deliveries_due;
CREATE INDEX deliveries_claim ON deliveries (alias, priority DESC, due_at) WHERE state = 'queued';
CREATE INDEX deliveries_leases ON deliveries (lease_until) WHERE state = 'sending';
CREATE INDEX deliveries_unconfirmed ON deliveries (due_at) WHERE state = 'sent' AND due_at IS NOT NULL;
DROP INDEX deliveries_provider_id;
CREATE INDEX deliveries_provider_id ON deliveries (alias, provider_message_id)
    WHERE provider_message_id IS NOT NULL;

-- recurring notices: a notice body approved once, issued again at every time its cron expression names
CREATE TABLE recurring_notices (
    id          INTEGER PRIMARY KEY,
    department  TEXT NOT NULL REFERENCES departments (code),
    cron        TEXT NOT NULL,          -- five fields, in server.timezone
    notice      TEXT NOT NULL,          -- JSON of the NoticeIn each firing issues
    created_by  TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL
);

-- one row per fired job: the primary key is the uniqueness key, so only one scheduler fires a slot
CREATE TABLE job_runs (
    job_key    TEXT PRIMARY KEY,
    fired_at   TEXT NOT NULL,
    fired_by   TEXT NOT NULL
);

-- deliveries not yet finished, by notice: finishing, cancelling and expiring notices look here
CREATE INDEX deliveries_active ON deliveries (notice_id) WHERE state = 'queued' OR state = 'sending';
