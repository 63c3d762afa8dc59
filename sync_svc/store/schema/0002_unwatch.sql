-- Whether an exchange source is being read. The engine unwatches a source once no copy of it
-- is left; a later watch starts it afresh (fills made meanwhile are never copied).
ALTER TABLE sources ADD COLUMN watched INTEGER NOT NULL DEFAULT 1;
