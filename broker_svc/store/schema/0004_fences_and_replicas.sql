-- Fences of the engine's leases and the attempts to place an order, so that an order an
-- engine replica lost the lease of is either recorded here before it was sent or never sent:
-- broker_fences holds the highest fencing token seen for a key (a leader source), and
-- order_attempts one row per client order id, written before any venue call.
CREATE TABLE broker_fences (
    fence_key TEXT PRIMARY KEY,
    token BIGINT NOT NULL
);
CREATE TABLE order_attempts (
    client_order_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    fence_key TEXT NOT NULL,
    token BIGINT NOT NULL,
    started_at TEXT NOT NULL
);
-- Replicas of the broker (meshkit.leases.SCHEMA_SQL with prefix "broker"): membership only,
-- so that each replica takes its share of every venue's rate limit. The broker holds no lease.
CREATE TABLE broker_replicas (
    replica_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    address TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE broker_leases (
    resource TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    token BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
