-- Copying futures positions (issue #18): what a derivatives fill did to the leader's position
-- ('' on spot and when unknown: open, reduce, close or reverse), whether it was the venue's
-- liquidation, and the leader's leverage there when known.
ALTER TABLE signals ADD COLUMN position_effect TEXT NOT NULL DEFAULT '';
ALTER TABLE signals ADD COLUMN liquidation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE signals ADD COLUMN leader_leverage TEXT;
