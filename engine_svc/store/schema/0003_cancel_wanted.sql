-- A cancel the engine was asked for (stop, kill switch) and must carry out even if the first
-- attempt fails: the resolver cancels such an order whenever it finds it resting at the venue.
ALTER TABLE order_intents ADD COLUMN cancel_wanted INTEGER NOT NULL DEFAULT 0;
