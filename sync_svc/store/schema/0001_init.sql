-- Sources: exchange accounts watched and strategies that publish. Money is TEXT (Decimal),
-- times are TEXT from meshkit.codec.to_iso, sync_settings is JSON.
CREATE TABLE IF NOT EXISTS sources (
    source_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    public INTEGER NOT NULL,
    exchange_id TEXT NOT NULL,
    exchange_name TEXT NOT NULL,
    sync_settings TEXT NOT NULL,
    equity TEXT,
    mode TEXT NOT NULL,
    cursor_time TEXT,
    start_time TEXT NOT NULL,
    last_sync_at TEXT,
    last_error TEXT NOT NULL,
    request_id TEXT,
    created_at TEXT NOT NULL
);

-- A repeated CreateBacktest with the same key returns the same source (NULL keys never clash).
CREATE UNIQUE INDEX IF NOT EXISTS sources_user_request ON sources (user_id, request_id);

-- Raw fills of watched accounts; venue trade ids are unique per account and symbol.
CREATE TABLE IF NOT EXISTS leader_fills (
    source_id TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty TEXT NOT NULL,
    price TEXT NOT NULL,
    fee TEXT,
    fee_currency TEXT NOT NULL,
    order_type TEXT,
    trade_time TEXT NOT NULL,
    received_at TEXT NOT NULL,
    signal_sequence BIGINT NOT NULL,
    PRIMARY KEY (source_id, symbol, trade_id)
);

-- The signal log: one gap-free sequence per source, deduplicated by signal id.
CREATE TABLE IF NOT EXISTS signals (
    source_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    signal_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    price TEXT,
    order_type TEXT NOT NULL,
    time_in_force TEXT,
    portfolio_fraction TEXT,
    leader_equity TEXT,
    leader_position TEXT,
    event_time TEXT NOT NULL,
    log_time TEXT NOT NULL,
    exchange_name TEXT NOT NULL,
    PRIMARY KEY (source_id, sequence),
    UNIQUE (source_id, signal_id)
);

CREATE INDEX IF NOT EXISTS signals_event_time ON signals (source_id, event_time);

-- The highest sequence each consumer acknowledged per source (informational).
CREATE TABLE IF NOT EXISTS stream_acks (
    consumer TEXT NOT NULL,
    source_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (consumer, source_id)
);
