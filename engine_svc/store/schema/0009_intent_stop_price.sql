-- The stop (trigger) price of a stop-market or stop-limit copy (a strategy's published stop
-- order is copied as one); empty for every other order.
ALTER TABLE order_intents ADD COLUMN stop_price TEXT;
