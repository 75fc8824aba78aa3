-- Nonces of signed callbacks already received (WeChat's server URL signs timestamp and nonce, not the body),
-- so that a seen request cannot be replayed with another body. A row is needed only while its timestamp is
-- inside the accepted window; housekeeping deletes it after ``expires_at`` (epoch seconds). Several
-- processes share the database, hence the table.

CREATE TABLE hook_nonces (
    hook       TEXT NOT NULL,   -- which callback, e.g. "wechat:<alias>"
    nonce      TEXT NOT NULL,   -- "<timestamp>:<nonce>" as the caller signed them
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (hook, nonce)
);
CREATE INDEX hook_nonces_expiry ON hook_nonces (expires_at);
