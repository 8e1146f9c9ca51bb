-- Filters move into the search index: each listing's facets (category, type, trust
-- level, publisher, certified, pricing, platforms, featured) are words of a column of
-- their own, so a search with filters is answered by the index without reading the
-- listings it does not show. Listing ids leave the index for the rowid map (reading an
-- UNINDEXED column costs a read per match); prefix indexes answer typeahead. The index
-- starts empty: the server fills it again at start (Catalog::repair_search_index).
DROP TABLE listing_search;
DELETE FROM listing_search_rows;
CREATE VIRTUAL TABLE listing_search USING fts5(
    name,
    tags,
    publisher,
    short_description,
    long_description,
    facets,
    prefix = '2 3 4',
    tokenize = 'unicode61 remove_diacritics 0'
);

-- Words with digits are never corrected (product numbers, versions), so the
-- correction vocabulary leaves them out.
DELETE FROM search_terms WHERE term GLOB '*[0-9]*';
