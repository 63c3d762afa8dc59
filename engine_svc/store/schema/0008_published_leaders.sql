-- Published leaders: an exchange account its owner lets every pro user copy. At most one
-- published (not withdrawn) leader per account; start_sequence is the source's log position
-- when it was published (its public trade count counts from there).
CREATE TABLE published_leaders (
    leader_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    exchange_id TEXT NOT NULL,
    exchange_name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    start_sequence BIGINT NOT NULL,
    published_at TEXT NOT NULL,
    unpublished_at TEXT
);

CREATE UNIQUE INDEX published_leaders_live_account ON published_leaders (exchange_id)
    WHERE unpublished_at IS NULL;
