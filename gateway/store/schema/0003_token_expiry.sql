-- Optional token expiry: a token whose expires_at (fixed-width ISO UTC text) is not after
-- now is refused with TOKEN_EXPIRED. NULL means it never expires (every older token).
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT
