-- Copy policy: the time in force of an intent (IOC for slippage-banded copies) and an index
-- to count the orders written for one follower account in the last minute.
ALTER TABLE order_intents ADD COLUMN time_in_force TEXT NOT NULL DEFAULT '';

CREATE INDEX order_intents_target_created ON order_intents (target_exchange_id, created_at);
