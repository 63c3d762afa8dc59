-- A report is written as it is made: its row first (complete 0), its items in batches, then
-- its counts and complete 1 with its audit entry in one transaction. Only complete reports are
-- listed; a reconciliation that died half way leaves an incomplete row nobody lists.
ALTER TABLE trade_reconciliations ADD COLUMN complete INTEGER NOT NULL DEFAULT 1;
