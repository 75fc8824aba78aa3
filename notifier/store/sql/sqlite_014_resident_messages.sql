-- Residents' self-service (/subscribe by SMS code or e-mail link, /me): one request table for both, and the
-- transactional messages (codes, links) that the engine sends before any notice.
--
-- subscription_requests is rebuilt: a request is for subscribing or for opening /me ('purpose'), reaches the
-- resident by SMS or e-mail ('channel'), and 'address' is the E.164 phone or the lower-case e-mail address
-- (it was 'phone'). For /me the name, village and topics are empty and 'subscriber_id' is the resident the
-- address belonged to when asked (NULL when nobody: nothing was sent, and no code can be right).

CREATE TABLE subscription_requests_014 (
    id            INTEGER PRIMARY KEY,
    purpose       TEXT NOT NULL DEFAULT 'subscribe' CHECK (purpose IN ('subscribe', 'me')),
    channel       TEXT NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms', 'email')),
    address       TEXT NOT NULL,          -- E.164 phone, or lower-case e-mail address
    name          TEXT NOT NULL DEFAULT '',
    area_code     TEXT REFERENCES areas (code),
    topics        TEXT NOT NULL DEFAULT '[]',
    client_ip     TEXT NOT NULL,
    code_hash     TEXT NOT NULL,          -- hex HMAC-SHA256 of the code (or the link's nonce), keyed with the secret
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'confirmed', 'unsent')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    created_at    REAL NOT NULL,
    expires_at    REAL NOT NULL,
    confirmed_at  REAL,
    subscriber_id INTEGER REFERENCES subscribers (id)
);
INSERT INTO subscription_requests_014 (id, address, name, area_code, topics, client_ip, code_hash, state, attempts,
                                       max_attempts, created_at, expires_at, confirmed_at, subscriber_id)
SELECT id, phone, name, area_code, topics, client_ip, code_hash, state, attempts, max_attempts, created_at,
       expires_at, confirmed_at, subscriber_id
FROM subscription_requests;
DROP TABLE subscription_requests;
ALTER TABLE subscription_requests_014 RENAME TO subscription_requests;
CREATE INDEX subscription_requests_address ON subscription_requests (address, created_at);
CREATE INDEX subscription_requests_ip ON subscription_requests (client_ip, created_at);
CREATE INDEX subscription_requests_created ON subscription_requests (created_at);

-- A transactional message to one address: a verification code, a /me link, an e-mail confirmation link.
-- The engine's workers claim these before any delivery of a notice, on the same alias, rate limiter and
-- lease; a gateway's permanent failure moves the message to the next alias of its kind. The text (which
-- holds the code or link) is blanked once the message is sent or given up; rows go after a day.
CREATE TABLE direct_messages (
    id                  INTEGER PRIMARY KEY,
    purpose             TEXT NOT NULL,          -- subscribe-code, subscribe-link, me-code, me-link
    request_id          INTEGER,                -- the subscription request it belongs to
    channel             TEXT NOT NULL,          -- channel kind: sms or email
    alias               TEXT NOT NULL,          -- the alias that tries it now
    address             TEXT NOT NULL,
    subject             TEXT,
    text                TEXT NOT NULL,
    html                TEXT,
    state               TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    due_at              REAL NOT NULL,
    deadline            REAL NOT NULL,          -- after it the code or link is useless: give up
    lease_until         REAL,
    leased_by           TEXT,
    provider_message_id TEXT,
    last_error          TEXT,
    created_at          REAL NOT NULL,
    sent_at             REAL
);
CREATE INDEX direct_messages_due ON direct_messages (alias, state, due_at);
CREATE INDEX direct_messages_created ON direct_messages (created_at);
