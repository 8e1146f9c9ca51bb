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
