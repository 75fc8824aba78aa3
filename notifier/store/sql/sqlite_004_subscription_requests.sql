-- Subscriptions started on the resident page (/subscribe, the printed notices' QR code): one row per
-- confirmation code sent by SMS. The code itself is never stored, only its HMAC-SHA256 under the
-- signing secret. Timing (created_at, expires_at, confirmed_at) is epoch seconds so that the rate
-- limits compare numbers; the rows are also what the limits count (per phone, per client address).
-- Rows older than a day (the longest limit window) are deleted: they hold a name and a phone number.

CREATE TABLE subscription_requests (
    id            INTEGER PRIMARY KEY,
    phone         TEXT NOT NULL,          -- E.164
    name          TEXT NOT NULL,
    area_code     TEXT NOT NULL REFERENCES areas (code),
    topics        TEXT NOT NULL,          -- JSON list of topic codes
    client_ip     TEXT NOT NULL,
    code_hash     TEXT NOT NULL,          -- hex HMAC-SHA256 of the code, keyed with security.signing_secret
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'confirmed', 'unsent')),
    attempts      INTEGER NOT NULL DEFAULT 0,  -- wrong codes entered
    max_attempts  INTEGER NOT NULL,
    created_at    REAL NOT NULL,
    expires_at    REAL NOT NULL,
    confirmed_at  REAL,
    subscriber_id INTEGER REFERENCES subscribers (id)
);
CREATE INDEX subscription_requests_phone ON subscription_requests (phone, created_at);
CREATE INDEX subscription_requests_ip ON subscription_requests (client_ip, created_at);
CREATE INDEX subscription_requests_created ON subscription_requests (created_at);
