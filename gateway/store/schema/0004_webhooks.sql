-- User webhooks (docs/webhooks.md). The signing secret is kept in clear: the gateway needs it
-- to sign every delivery (HMAC), and it is shown to its user once, at creation.
CREATE TABLE webhooks (
    webhook_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (user_id, url)
);

-- One row per event and webhook: the outbox the dispatcher sends from, and the delivery log
-- its user reads. (webhook_id, event_id) is unique, so an event is queued once per webhook.
-- status: pending (next_attempt_at is when the next try is due), delivered or dropped.
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dropped')),
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT,
    last_status_code INTEGER,
    last_error TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (webhook_id, event_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);

-- The dispatcher's high-water mark: per user and service chain, the highest audit seq whose
-- events are queued. Advanced in the transaction that queues them, so a restart neither
-- loses nor repeats an event.
CREATE TABLE webhook_cursors (
    user_id TEXT NOT NULL,
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, chain)
);

-- Replicas and the lease that lets one gateway replica run the dispatcher (meshkit/leases.py).
CREATE TABLE gateway_replicas (
    replica_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    address TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE gateway_leases (
    resource TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    token BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
)
