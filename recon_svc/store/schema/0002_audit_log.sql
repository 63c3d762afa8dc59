-- The recon service's audit trail: one hash chain (meshkit/audit.py). seq numbers the chain
-- 1, 2, 3...; hash is the SHA-256 of the canonical JSON of every other column, prev_hash
-- included; before and after are JSON text. Rows are only ever appended.
CREATE TABLE recon_audit_log (
    seq BIGINT PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    request_id TEXT NOT NULL,
    owner_user_id TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    action TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE INDEX recon_audit_log_owner ON recon_audit_log (owner_user_id, seq);
