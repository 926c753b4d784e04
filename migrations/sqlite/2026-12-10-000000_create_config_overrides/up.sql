-- Changes made through the admin API, one row per item, read by every replica every
-- reload.poll_seconds. `item` is the item as JSON; NULL is a tombstone (the item is removed, even
-- when the config file declares it). Times are epoch ms.
CREATE TABLE config_overrides (
    kind       TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    item       TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);
