-- Pull counts, owned by the domains that keep them. The registry no longer writes the
-- catalog's listings: it adds the pulls it counted to its own running total per
-- repository, and the catalog folds what is new of each total into its listings' pulls.

-- The registry's record: every pull of the repository counted so far (it only grows).
CREATE TABLE repository_pulls (
    repository TEXT PRIMARY KEY,
    pulls BIGINT NOT NULL
);

-- The catalog's record: how much of each repository's total is already in listings.pulls.
-- Folding moves it forward with a compare-and-set, so every pull reaches a listing once.
CREATE TABLE folded_pulls (
    repository TEXT PRIMARY KEY,
    pulls BIGINT NOT NULL
);
