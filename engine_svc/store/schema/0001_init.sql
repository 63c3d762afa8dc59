-- The engine's tables: copy configurations (the seed's columns first), the signal inbox and
-- the order intents written before any broker call. Money is Decimal text, times ISO text,
-- JSON columns hold settings with decimals as strings.
CREATE TABLE copy_trading_configs (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    source TEXT NOT NULL,
    target_exchange_ids TEXT NOT NULL,
    risk_limits TEXT NOT NULL,
    copy_settings TEXT NOT NULL,
    sync_status TEXT NOT NULL,
    last_sync_at TEXT,
    is_active INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    source_id TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT NOT NULL,
    sync_settings TEXT NOT NULL,
    start_sequence BIGINT NOT NULL,
    last_sequence BIGINT NOT NULL,
    request_id TEXT,
    target_venues TEXT NOT NULL,
    daily_risk TEXT NOT NULL
);

CREATE UNIQUE INDEX copy_trading_configs_user_request ON copy_trading_configs (user_id, request_id);

CREATE INDEX copy_trading_configs_user_created ON copy_trading_configs (user_id, created_at);

CREATE INDEX copy_trading_configs_source ON copy_trading_configs (source_id, status);

CREATE TABLE signal_inbox (
    source_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    signal_id TEXT NOT NULL,
    signal TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (source_id, sequence)
);

CREATE TABLE order_intents (
    intent_id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    signal_id TEXT NOT NULL,
    target_exchange_id TEXT NOT NULL,
    leg INTEGER NOT NULL,
    client_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    quantity TEXT NOT NULL,
    price TEXT,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    venue_order_id TEXT NOT NULL,
    filled_quantity TEXT NOT NULL,
    average_price TEXT,
    leader_quantity TEXT NOT NULL,
    leader_price TEXT,
    leader_event_time TEXT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    not_found_count INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_sent_at TEXT,
    UNIQUE (config_id, source_id, sequence, target_exchange_id, leg)
);

CREATE INDEX order_intents_state ON order_intents (state, created_at);

CREATE INDEX order_intents_config_created ON order_intents (config_id, created_at);
