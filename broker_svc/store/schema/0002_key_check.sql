-- The key-check value: a known plaintext sealed by the broker's key (one row, check_id
-- 'credentials'). A start whose keys cannot open it is refused, so a wrong ENCRYPTION_KEY
-- fails at once instead of every account failing later.
CREATE TABLE broker_key_check (
    check_id TEXT PRIMARY KEY,
    ciphertext TEXT NOT NULL,
    nonce TEXT NOT NULL,
    key_id TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
