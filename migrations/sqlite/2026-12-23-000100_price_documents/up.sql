-- The last good copy of each `pricing.url` document, as fetched: one row per URL, replaced by each
-- fetch that validates. A gateway whose fetch fails at start prices from it, and re-reads it with
-- its own provider mapping.
CREATE TABLE price_documents (
    url TEXT PRIMARY KEY,
    fetched_at BIGINT NOT NULL,
    body TEXT NOT NULL
);
