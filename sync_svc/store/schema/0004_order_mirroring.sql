-- Order mirroring (copy_mode "orders"): a signal says what the leader did (a fill, or a change
-- of a resting order) and which of its orders it concerns.
ALTER TABLE signals ADD COLUMN kind TEXT NOT NULL DEFAULT 'fill';
ALTER TABLE signals ADD COLUMN leader_order_id TEXT NOT NULL DEFAULT '';
ALTER TABLE signals ADD COLUMN stop_price TEXT;
ALTER TABLE signals ADD COLUMN order_mirrored INTEGER NOT NULL DEFAULT 0;
ALTER TABLE signals ADD COLUMN opened_sequence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE signals ADD COLUMN replaced_order_id TEXT NOT NULL DEFAULT '';

-- The venue order id of each leader fill (empty when the venue did not say).
ALTER TABLE leader_fills ADD COLUMN order_id TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS leader_fills_order ON leader_fills (source_id, order_id);

-- The leader orders the log announced (order_open, or the new order of a cancel-replace):
-- one row per order, open until the venue shows it ended. An order with a row is never
-- announced again, and its fills are logged as order_mirrored.
CREATE TABLE IF NOT EXISTS leader_orders (
    source_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    quantity TEXT NOT NULL,
    price TEXT,
    stop_price TEXT,
    time_in_force TEXT,
    sequence BIGINT NOT NULL,
    open INTEGER NOT NULL,
    PRIMARY KEY (source_id, order_id)
);
