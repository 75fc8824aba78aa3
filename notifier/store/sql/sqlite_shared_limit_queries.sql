-- Rate-limit buckets and access tokens shared by every process of one database (sqlite_027).
-- The PostgreSQL file of the same name differs only where marked: there the bucket is read FOR UPDATE,
-- here the write transaction (BEGIN IMMEDIATE) already keeps every other writer out.

-- name: rate_bucket_create
INSERT INTO rate_buckets (bucket, tokens, updated) VALUES (:bucket, :tokens, :now)
ON CONFLICT (bucket) DO NOTHING;

-- name: rate_bucket_locked
SELECT tokens, updated FROM rate_buckets WHERE bucket = :bucket;

-- name: rate_bucket_save
UPDATE rate_buckets SET tokens = :tokens, updated = :updated WHERE bucket = :bucket;

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
