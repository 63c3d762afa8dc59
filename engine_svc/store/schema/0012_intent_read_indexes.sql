-- The read endpoints under load (issue #14). When an account's intent last changed (the status'
-- and the risk monitor's portfolio freshness check) is the newest entry of this index, one
-- search per account instead of a scan of every intent it ever had; and an index holding the
-- state makes the per-state counts of GET /status read the index alone, not every intent row.
CREATE INDEX order_intents_target_updated ON order_intents (target_exchange_id, updated_at);

CREATE INDEX order_intents_config_state ON order_intents (config_id, state);
