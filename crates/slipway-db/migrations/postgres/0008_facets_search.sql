-- Filters move into the search index: each listing's facets (category, type, trust
-- level, publisher, certified, pricing, platforms, featured) are an array with a GIN
-- index of its own, so a search with filters is answered by the two indexes without
-- reading the listings it does not show. The index starts empty: the server fills it
-- again at start (Catalog::repair_search_index).
ALTER TABLE listing_search ADD COLUMN facets TEXT[] NOT NULL DEFAULT '{}';
CREATE INDEX listing_search_facets ON listing_search USING GIN (facets);
DELETE FROM listing_search;

-- Words with digits are never corrected (product numbers, versions), so the
-- correction vocabulary leaves them out.
DELETE FROM search_terms WHERE term ~ '[0-9]';
