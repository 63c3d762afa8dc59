-- Copying futures positions (issue #18): a derivatives exit is sent reduce-only, and an entry
-- carries the leverage to set on the follower's market before it is sent (NULL: none).
ALTER TABLE order_intents ADD COLUMN reduce_only INTEGER NOT NULL DEFAULT 0;
ALTER TABLE order_intents ADD COLUMN leverage INTEGER;
