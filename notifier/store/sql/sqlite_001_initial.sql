-- Initial schema (SQLite). Timestamps are RFC 3339 text in UTC; queue timing (due_at,
-- lease_until) is epoch seconds so that workers compare numbers.

CREATE TABLE areas (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('county', 'town', 'village')),
    parent      TEXT REFERENCES areas (code)
);
CREATE INDEX areas_parent ON areas (parent);

CREATE TABLE departments (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL
);

CREATE TABLE topics (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE department_topics (
    department  TEXT NOT NULL REFERENCES departments (code),
    topic_id    INTEGER NOT NULL REFERENCES topics (id),
    PRIMARY KEY (department, topic_id)
);

CREATE TABLE resident_groups (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE subscribers (
    id                   INTEGER PRIMARY KEY,
    external_id          TEXT,
    name                 TEXT NOT NULL,
    phone                TEXT,
    email                TEXT,
    wechat_openid        TEXT,
    wecom_userid         TEXT,
    area_code            TEXT NOT NULL REFERENCES areas (code),
    channels             TEXT NOT NULL,          -- JSON list, preference order
    language             TEXT NOT NULL DEFAULT 'zh',
    quiet_start          TEXT,
    quiet_end            TEXT,
    consent_source       TEXT NOT NULL,
    consent_at           TEXT NOT NULL,
    consent_withdrawn_at TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    deleted_at           TEXT
);
CREATE INDEX subscribers_area ON subscribers (area_code);
CREATE UNIQUE INDEX subscribers_phone ON subscribers (phone) WHERE phone IS NOT NULL AND deleted_at IS NULL;
CREATE UNIQUE INDEX subscribers_external ON subscribers (external_id) WHERE external_id IS NOT NULL;

CREATE TABLE subscriber_groups (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    group_id      INTEGER NOT NULL REFERENCES resident_groups (id),
    PRIMARY KEY (subscriber_id, group_id)
);
CREATE INDEX subscriber_groups_group ON subscriber_groups (group_id, subscriber_id);

CREATE TABLE subscriber_topics (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    topic_id      INTEGER NOT NULL REFERENCES topics (id),
    PRIMARY KEY (subscriber_id, topic_id)
);
CREATE INDEX subscriber_topics_topic ON subscriber_topics (topic_id, subscriber_id);

-- a resident's refusals: kind 'topic' (value = topic code) or 'channel' (value = channel kind)
CREATE TABLE subscriber_optouts (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('topic', 'channel')),
    value         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    source        TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, kind, value)
);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    prefix       TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL,
    name         TEXT NOT NULL,
    department   TEXT NOT NULL REFERENCES departments (code),
    role         TEXT NOT NULL CHECK (role IN ('issuer', 'approver', 'admin', 'viewer')),
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);

CREATE TABLE notices (
    id              INTEGER PRIMARY KEY,
    department      TEXT NOT NULL REFERENCES departments (code),
    topic           TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT,
    template        TEXT,
    data            TEXT NOT NULL,             -- JSON
    severity        TEXT NOT NULL,
    target          TEXT NOT NULL,             -- JSON
    channels        TEXT NOT NULL,             -- JSON list
    channel_mode    TEXT NOT NULL,
    send_at         TEXT,
    expires_at      TEXT,
    references_id   INTEGER REFERENCES notices (id),
    state           TEXT NOT NULL,
    created_by      INTEGER REFERENCES api_keys (id),
    approved_by     INTEGER REFERENCES api_keys (id),
    reason          TEXT,
    idempotency_key TEXT,
    request_hash    TEXT,
    targeted        INTEGER,                   -- residents targeted, set at fan-out
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX notices_idempotency ON notices (department, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX notices_state ON notices (state);

CREATE TABLE deliveries (
    id                  INTEGER PRIMARY KEY,
    notice_id           INTEGER NOT NULL REFERENCES notices (id),
    subscriber_id       INTEGER NOT NULL REFERENCES subscribers (id),
    channel             TEXT NOT NULL,          -- channel kind
    alias               TEXT,                   -- configured channel that sent it
    rank                INTEGER NOT NULL DEFAULT 0, -- position in the resident's fallback chain
    state               TEXT NOT NULL,
    priority            INTEGER NOT NULL DEFAULT 0,
    attempts            INTEGER NOT NULL DEFAULT 0,
    due_at              REAL,
    lease_until         REAL,
    leased_by           TEXT,
    address             TEXT,
    content             TEXT,                   -- JSON: the rendered message, sent identically on retry
    provider_message_id TEXT,
    last_error          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    sent_at             TEXT,
    delivered_at        TEXT,
    UNIQUE (notice_id, subscriber_id, channel)
);
CREATE INDEX deliveries_due ON deliveries (state, priority DESC, due_at) WHERE state IN ('queued', 'sending');
CREATE INDEX deliveries_provider_id ON deliveries (alias, provider_message_id);
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);

CREATE TABLE receipts (
    id                  INTEGER PRIMARY KEY,
    delivery_id         INTEGER REFERENCES deliveries (id),
    alias               TEXT NOT NULL,
    provider_message_id TEXT,
    status              TEXT NOT NULL,
    detail              TEXT,
    received_at         TEXT NOT NULL
);
CREATE INDEX receipts_delivery ON receipts (delivery_id);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
