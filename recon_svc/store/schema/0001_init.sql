-- Reconciliation reports (the seed's trade_reconciliations) and their items, one per
-- (leader signal, follower account). Counts are derived from the items when a report is stored.
CREATE TABLE trade_reconciliations (
    id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    start_time TEXT NOT NULL,
    end_time TEXT NOT NULL,
    total_count INTEGER NOT NULL,
    matched_count INTEGER NOT NULL,
    mismatched_count INTEGER NOT NULL,
    missing_count INTEGER NOT NULL,
    duplicate_count INTEGER NOT NULL,
    error_count INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX trade_reconciliations_config_created
    ON trade_reconciliations (config_id, created_at);

CREATE TABLE reconciliation_items (
    reconciliation_id TEXT NOT NULL REFERENCES trade_reconciliations (id),
    sequence BIGINT NOT NULL,
    signal_id TEXT NOT NULL,
    target_exchange_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    intent_state TEXT NOT NULL,
    venue_filled_quantity TEXT,
    PRIMARY KEY (reconciliation_id, sequence, target_exchange_id)
);
