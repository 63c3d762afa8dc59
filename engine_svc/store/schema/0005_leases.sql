-- Replicas of the engine and their leases, one per copied leader source (meshkit.leases);
-- the token an intent was last sent under.
CREATE TABLE engine_replicas (
    replica_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    address TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE engine_leases (
    resource TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    token BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
ALTER TABLE order_intents ADD COLUMN sent_token BIGINT NOT NULL DEFAULT 0;
