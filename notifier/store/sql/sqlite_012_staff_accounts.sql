-- Staff accounts of the console (/console): one person each, in one department with one role (the roles API
-- keys have). Each account acts through its own API key row (key_id), whose secret was never kept, so the
-- notices it drafts or decides carry an api_keys id like every other author and approver; revoking that key
-- disables the account. Passwords are argon2id hashes; a new account's one-time password must be changed at
-- first login (must_change_password).

CREATE TABLE staff_accounts (
    id                   INTEGER PRIMARY KEY,
    login                TEXT NOT NULL UNIQUE,
    name                 TEXT NOT NULL,
    department           TEXT NOT NULL REFERENCES departments (code),
    role                 TEXT NOT NULL,
    key_id               INTEGER NOT NULL UNIQUE REFERENCES api_keys (id),
    password_hash        TEXT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 1,
    password_changed_at  TEXT,
    created_at           TEXT NOT NULL,
    disabled_at          TEXT
);

-- A signed-in browser. Only the SHA-256 of the session cookie's value is stored; csrf_token is the value
-- every form of the session carries. Expired rows are ignored and deleted at the next login.
CREATE TABLE staff_sessions (
    token_hash   TEXT PRIMARY KEY,
    staff_id     INTEGER NOT NULL REFERENCES staff_accounts (id),
    csrf_token   TEXT NOT NULL,
    created_at   REAL NOT NULL,   -- epoch seconds
    last_seen_at REAL NOT NULL,
    expires_at   REAL NOT NULL
);
CREATE INDEX staff_sessions_by_staff ON staff_sessions (staff_id);

-- Every login attempt, for the throttle (per login name and per client address) and for the record.
CREATE TABLE staff_login_attempts (
    id        INTEGER PRIMARY KEY,
    login     TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    succeeded INTEGER NOT NULL,
    at        REAL NOT NULL        -- epoch seconds
);
CREATE INDEX staff_login_attempts_by_login ON staff_login_attempts (login, at);
CREATE INDEX staff_login_attempts_by_client ON staff_login_attempts (client_ip, at);
