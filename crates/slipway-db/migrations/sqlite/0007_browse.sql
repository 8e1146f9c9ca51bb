-- Browsing without search words walks an index in the page's own order instead of
-- sorting every published listing, and "certified only" reads a column of its own
-- instead of matching the badges' JSON text.
ALTER TABLE listings ADD COLUMN certified BIGINT NOT NULL DEFAULT 0;
UPDATE listings SET certified = 1 WHERE badges LIKE '%"certified"%';
DROP INDEX listings_browse;
DROP INDEX listings_by_update;
DROP INDEX listings_by_pulls;
CREATE INDEX listings_browse ON listings (status, featured DESC, pulls DESC, id);
CREATE INDEX listings_browse_category ON listings (status, category, featured DESC, pulls DESC, id);
CREATE INDEX listings_browse_certified ON listings (status, certified, featured DESC, pulls DESC, id);
CREATE INDEX listings_by_pulls ON listings (status, pulls DESC, id);
CREATE INDEX listings_by_update ON listings (status, updated_at DESC, id);
