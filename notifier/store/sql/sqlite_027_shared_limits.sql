-- What the processes sharing one database must also share beyond the queue: the rate-limit buckets of
-- each channel alias (so ten workers do not send ten times a gateway's contracted rate) and the access
-- tokens of the WeChat and WeCom accounts (so two processes do not each fetch a token: the token
-- endpoints are frequency-limited, and a new stable token may end the old one).

-- one token bucket per alias and period ("sms:1" per second, "sms:60" per minute); the capacity and the
-- rate come from each process's configuration, the tokens left and the time of the last refill live here
CREATE TABLE rate_buckets (
    bucket   TEXT PRIMARY KEY,
    tokens   REAL NOT NULL,
    updated  REAL NOT NULL          -- epoch seconds of the last refill
);

-- one access token per account ("wechat:<appid>", "wecom:<corpid>:<agentid>"); a process fetching a new
-- one holds the fetch lease (fetching_by until fetch_until) so the others wait for it instead of
-- fetching too
CREATE TABLE shared_tokens (
    key          TEXT PRIMARY KEY,
    value        TEXT,
    stale_at     REAL NOT NULL DEFAULT 0,   -- epoch seconds after which the token is fetched again
    fetching_by  TEXT,
    fetch_until  REAL NOT NULL DEFAULT 0
);
