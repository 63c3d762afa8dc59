-- A leader's venue that cannot be read for too long (sync's Source.down_since older than the
-- engine's LEADER_DOWN_ALERT_MS): one row per configuration copying it, from its
-- leader_stream_down audit entry to its leader_stream_up one. The row is the once-per-outage
-- guard: its insert (or delete) and the audit entry are one transaction, so a restart or a
-- second replica never writes an entry twice.
CREATE TABLE IF NOT EXISTS leader_stream_alerts (
    config_id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL,
    down_since TEXT NOT NULL,
    alerted_at TEXT NOT NULL
);
