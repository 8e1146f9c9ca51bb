-- The search seam: a tsvector with a GIN index here, an FTS5 index on SQLite. Both index
-- the same pre-tokenised text (lower-case words, split by the catalog crate), so the two
-- engines see identical terms. Weights: A name, B tags, C publisher and short
-- description, D long description.
CREATE TABLE listing_search (
    listing_id TEXT PRIMARY KEY,
    document TSVECTOR NOT NULL
);
CREATE INDEX listing_search_document ON listing_search USING GIN (document);
