-- Rate-limit buckets and access tokens shared by every process of one database (sqlite_027).
-- The PostgreSQL file of the same name holds the bucket blocks in its JSON functions; there the upsert locks
-- the buckets' rows, here the write transaction (BEGIN IMMEDIATE) already keeps every other writer out.

-- name: rate_buckets_lock
-- :buckets is a JSON array of [bucket, capacity], each bucket created full when new; every one comes back
-- (the no-op update returns an existing row too: on PostgreSQL it also locks it)
INSERT INTO rate_buckets (bucket, tokens, updated)
SELECT json_extract(b.value, '$[0]'), json_extract(b.value, '$[1]'), :now FROM json_each(:buckets) b WHERE true
ON CONFLICT (bucket) DO UPDATE SET tokens = rate_buckets.tokens
RETURNING bucket, tokens, updated;

-- name: rate_buckets_save
-- :buckets is a JSON array of [bucket, tokens, updated]
UPDATE rate_buckets SET tokens = json_extract(s.value, '$[1]'), updated = json_extract(s.value, '$[2]')
FROM json_each(:buckets) s
WHERE rate_buckets.bucket = json_extract(s.value, '$[0]');

-- name: shared_token_get
SELECT value, stale_at, fetching_by, fetch_until FROM shared_tokens WHERE key = :key;

-- name: shared_token_begin_fetch
-- one row changed: this process fetches the next token; none: the stored one is good (and not the one a
-- platform rejected), or another process is fetching it now
INSERT INTO shared_tokens (key, value, stale_at, fetching_by, fetch_until)
VALUES (:key, NULL, 0, :holder, :fetch_until)
ON CONFLICT (key) DO UPDATE SET fetching_by = excluded.fetching_by, fetch_until = excluded.fetch_until
WHERE shared_tokens.fetch_until <= :now
  AND (shared_tokens.value IS NULL OR shared_tokens.stale_at <= :now OR shared_tokens.value = :rejected);

-- name: shared_token_save
UPDATE shared_tokens SET value = :value, stale_at = :stale_at, fetching_by = NULL, fetch_until = 0
WHERE key = :key AND fetching_by = :holder;

-- name: shared_token_abandon_fetch
UPDATE shared_tokens SET fetching_by = NULL, fetch_until = 0 WHERE key = :key AND fetching_by = :holder;
