-- PostgreSQL blocks of sqlite_shared_limit_queries.sql that differ from the SQLite ones.

-- name: rate_bucket_locked
-- written for sqlite 01a465c092dd
-- locked until the transaction ends: the other processes' claims on this alias wait their turn here
SELECT tokens, updated FROM rate_buckets WHERE bucket = :bucket FOR UPDATE;
