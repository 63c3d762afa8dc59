-- The real account: items are no longer only one per (signal, follower account). A report also
-- holds venue orders no copy made ("order"), per-symbol positions ("position") and what could
-- not be read ("read"), so an item is keyed by its place in the report (item_index). Old items
-- keep their order (by sequence, then account) and are "copy" items.
ALTER TABLE trade_reconciliations ADD COLUMN extra_count INTEGER NOT NULL DEFAULT 0;

CREATE TABLE reconciliation_items_v2 (
    reconciliation_id TEXT NOT NULL REFERENCES trade_reconciliations (id),
    item_index INTEGER NOT NULL,
    sequence BIGINT NOT NULL,
    signal_id TEXT NOT NULL,
    target_exchange_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    intent_state TEXT NOT NULL,
    venue_filled_quantity TEXT,
    kind TEXT NOT NULL,
    symbol TEXT NOT NULL,
    expected_position TEXT,
    venue_position TEXT,
    drift TEXT,
    correction_client_order_id TEXT NOT NULL,
    PRIMARY KEY (reconciliation_id, item_index)
);

INSERT INTO reconciliation_items_v2 (
    reconciliation_id, item_index, sequence, signal_id, target_exchange_id, client_order_id,
    outcome, detail, intent_state, venue_filled_quantity, kind, symbol, expected_position,
    venue_position, drift, correction_client_order_id
)
SELECT
    reconciliation_id,
    ROW_NUMBER() OVER (PARTITION BY reconciliation_id ORDER BY sequence, target_exchange_id) - 1,
    sequence, signal_id, target_exchange_id, client_order_id, outcome, detail, intent_state,
    venue_filled_quantity, 'copy', '', NULL, NULL, NULL, ''
FROM reconciliation_items;

DROP TABLE reconciliation_items;

ALTER TABLE reconciliation_items_v2 RENAME TO reconciliation_items;
