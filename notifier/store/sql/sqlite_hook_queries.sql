-- name: remember_hook_nonce
-- one row changed: the nonce is new (or its earlier use has expired); none: a replay
INSERT INTO hook_nonces (hook, nonce, expires_at) VALUES (:hook, :nonce, :expires_at)
ON CONFLICT (hook, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE hook_nonces.expires_at <= :now;

-- name: forget_hook_nonce
DELETE FROM hook_nonces WHERE hook = :hook AND nonce = :nonce;

-- name: purge_hook_nonces
DELETE FROM hook_nonces WHERE expires_at <= :now;
