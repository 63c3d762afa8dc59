-- Exchange accounts with their credentials sealed by AES-GCM (base64 text, portable),
-- and the follower orders as the venue last reported them.
CREATE TABLE exchange_accounts (
    exchange_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    exchange_name TEXT NOT NULL,
    label TEXT NOT NULL,
    api_key_hint TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    nonce TEXT NOT NULL,
    key_id TEXT NOT NULL,
    request_id TEXT,
    created_at TEXT NOT NULL,
    deleted_at TEXT
);

CREATE UNIQUE INDEX exchange_accounts_user_request ON exchange_accounts (user_id, request_id);

CREATE INDEX exchange_accounts_user_created ON exchange_accounts (user_id, created_at);

CREATE TABLE broker_orders (
    exchange_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    time_in_force TEXT,
    quantity TEXT NOT NULL,
    price TEXT,
    stop_price TEXT,
    venue_order_id TEXT NOT NULL,
    status TEXT NOT NULL,
    filled_quantity TEXT NOT NULL,
    average_price TEXT,
    sent_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (exchange_id, client_order_id)
);

CREATE INDEX broker_orders_venue_order ON broker_orders (exchange_id, venue_order_id);
