-- Gateway users and their API tokens. A token is stored only as the SHA-256 of its text
-- (tokens are 256-bit random values, so a plain hash is enough); the text is shown once.
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    plan TEXT NOT NULL CHECK (plan IN ('pro', 'free')),
    created_at TEXT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE INDEX api_tokens_user ON api_tokens (user_id);
