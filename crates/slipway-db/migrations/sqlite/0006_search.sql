-- The search seam: an FTS5 index here, a tsvector with a GIN index on PostgreSQL. Both
-- index the same pre-tokenised text (lower-case words, split by the catalog crate), so
-- the two engines see identical terms; neither strips diacritics.
CREATE VIRTUAL TABLE listing_search USING fts5(
    listing_id UNINDEXED,
    name,
    tags,
    publisher,
    short_description,
    long_description,
    tokenize = 'unicode61 remove_diacritics 0'
);

-- Which FTS row holds which listing. FTS5 can only find a row quickly by its rowid (a
-- lookup by an UNINDEXED column scans the whole index), so re-indexing or withdrawing a
-- listing goes through this map.
CREATE TABLE listing_search_rows (
    listing_id TEXT PRIMARY KEY,
    row_id INTEGER NOT NULL UNIQUE
);
