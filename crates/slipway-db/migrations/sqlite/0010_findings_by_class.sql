-- An image's counts per class are recounted after each re-assessment that touches it
-- (thousands of images when a core package's advisories change). With this index the
-- recount reads index pages only, not every finding's row.
CREATE INDEX findings_by_class ON findings (digest, class);
