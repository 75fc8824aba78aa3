-- When each API key was last used, so that unused keys can be found and revoked.
ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
