-- PostgreSQL blocks of sqlite_shared_limit_queries.sql that differ from the SQLite ones: the same statements
-- with PostgreSQL's JSON functions, and the row locks the SQLite write transaction makes needless.

-- name: rate_buckets_lock
-- written for sqlite ece266a78d06
-- the no-op update locks each row until the transaction ends (the other processes' takes on this alias wait
-- their turn here), row after row in the order of :buckets (per second, then per minute), so two takes
-- never wait on each other in a cycle
INSERT INTO rate_buckets (bucket, tokens, updated)
SELECT b.value ->> 0, (b.value ->> 1)::double precision, :now
FROM json_array_elements(CAST(:buckets AS json)) WITH ORDINALITY AS b (value, n)
ORDER BY b.n
ON CONFLICT (bucket) DO UPDATE SET tokens = rate_buckets.tokens
RETURNING bucket, tokens, updated;

-- name: rate_buckets_save
-- written for sqlite 6d2521faed1d
UPDATE rate_buckets SET tokens = (s.value ->> 1)::double precision, updated = (s.value ->> 2)::double precision
FROM json_array_elements(CAST(:buckets AS json)) AS s (value)
WHERE rate_buckets.bucket = s.value ->> 0;
