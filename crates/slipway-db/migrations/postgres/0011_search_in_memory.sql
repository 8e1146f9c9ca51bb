-- Search is answered by an in-memory index each replica builds from the listings table,
-- so the full-text index and the spelling vocabulary go.
DROP TABLE IF EXISTS listing_search;
DROP TABLE IF EXISTS search_terms;
-- Sorting by pulls or by update, and filtering on the certified flag, happen in that
-- index too: these indexes only slowed every write (pull counts above all).
DROP INDEX IF EXISTS listings_browse_certified;
DROP INDEX IF EXISTS listings_by_pulls;
DROP INDEX IF EXISTS listings_by_update;
