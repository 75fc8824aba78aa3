-- Confirmations and residents' feedback (docs/feedback.md).
--
-- A notice may ask its residents to confirm (notices.confirmation, JSON {"remind_after_minutes": N}): an SMS
-- reply of the alias's confirm word or a click on a signed link moves that resident's delivery to state
-- 'confirmed' (confirmed_at). Residents still unconfirmed after N minutes get one reminder on their next
-- channel (confirmation_reminders keeps that it was sent, so it is sent once), then appear on the notice's
-- follow-up list. Residents' replies (SMS, WeChat, the public form) become feedback items, answered through
-- a reply notice (notices.answers_feedback) that goes to the one resident on the channel the item came from.

ALTER TABLE notices ADD COLUMN confirmation TEXT;
ALTER TABLE notices ADD COLUMN answers_feedback INTEGER;
ALTER TABLE deliveries ADD COLUMN confirmed_at TEXT;

CREATE TABLE confirmation_reminders (
    notice_id     INTEGER NOT NULL REFERENCES notices (id),
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
    channel       TEXT,                 -- the kind the reminder went on; NULL: the resident had no next channel
    reminded_at   TEXT NOT NULL,
    PRIMARY KEY (notice_id, subscriber_id)
);

CREATE TABLE feedback (
    id            INTEGER PRIMARY KEY,
    notice_id     INTEGER REFERENCES notices (id),       -- NULL: a reply that matched no notice
    department    TEXT REFERENCES departments (code),    -- the notice's; NULL with the notice
    subscriber_id INTEGER REFERENCES subscribers (id),   -- the resident, when known
    channel       TEXT NOT NULL CHECK (channel IN ('sms', 'wechat', 'form')),
    alias         TEXT,                 -- the SMS or WeChat alias it came in on
    contact       TEXT,                 -- phone or openid a reply can go to (personal data)
    contact_name  TEXT,                 -- the name given on the form
    category      TEXT NOT NULL CHECK (category IN ('opinion', 'complaint')),
    text          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'answered', 'closed')),
    assigned_to   TEXT,
    source_hash   TEXT,                 -- keyed hash of the form sender's address, for the rate limit
    received_at   TEXT NOT NULL,
    due_at        TEXT NOT NULL,        -- received_at + the configured time limit
    answer        TEXT,
    answered_at   TEXT,
    answered_by   TEXT,
    reply_notice  INTEGER REFERENCES notices (id),
    outcome       TEXT,
    closed_at     TEXT,
    closed_by     TEXT
);
CREATE INDEX feedback_department ON feedback (department, id);
CREATE INDEX feedback_notice ON feedback (notice_id);
CREATE INDEX feedback_source ON feedback (source_hash, received_at) WHERE source_hash IS NOT NULL;
