//! What each replica keeps in memory to serve blobs without asking the database and the
//! store every time (issue 19): a small blob GET otherwise spent most of its time handing
//! its database query and its file read to other threads and back, and a pull asks for
//! the same configs and small layers many times.
//!
//! `BlobLinks`: which blobs each repository links, as recently read from the database.
//! Only positive answers are kept (a blob pushed on another replica is found at once), for
//! at most `KEEP_MS` by the database's Clock. Removals made through this replica are exact:
//! `forget` drops the entry after the database has, and an answer read from the database
//! while a removal ran is not kept (the generation check), so it cannot bring the link
//! back. Another replica's DELETE or garbage collection shows here within `KEEP_MS`
//! (small blobs are served from memory meanwhile); a larger blob whose bytes were deleted
//! meanwhile is caught by the caller, which asks the database again when a kept blob is
//! missing from storage.
//!
//! `SmallBlobs`: the bytes of blobs up to `SMALL_BLOB`. Blobs are content-addressed and
//! immutable, so a kept copy is never stale; whether a repository may serve it is decided
//! by its links first, as for any blob.
//!
//! Both are bounded (entries, bytes) with quick_cache's S3-FIFO eviction, which keeps
//! what is asked for again and lets one-off reads pass through.

use std::sync::Mutex;

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use slipway_oci::{Digest, RepoName};

/// How long a link read from the database is trusted without asking again.
pub(crate) const KEEP_MS: i64 = 5_000;
/// The most links kept: ~ 200 bytes each.
const MAX_LINKS: usize = 10_000;
/// Blobs up to this size are kept whole: configs, signatures, small layers.
pub(crate) const SMALL_BLOB: u64 = 64 * 1024;
/// The bytes of small blobs kept at most.
const SMALL_BLOBS_BUDGET: u64 = 16 << 20;

type Link = (RepoName, Digest);

pub(crate) struct BlobLinks {
    /// Blob size and when it was read, by the database's Clock.
    entries: Cache<Link, (u64, i64)>,
    /// Bumped by every removal, so a lookup that raced one does not keep its answer.
    generation: Mutex<u64>,
}

impl Default for BlobLinks {
    fn default() -> Self {
        BlobLinks { entries: Cache::new(MAX_LINKS), generation: Mutex::new(0) }
    }
}

impl BlobLinks {
    fn generation(&self) -> std::sync::MutexGuard<'_, u64> {
        self.generation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The size of `digest` in `repo` if it was read within `KEEP_MS` of `now_ms`, else
    /// the generation to hand back to `keep` once the database has answered.
    pub(crate) fn get(&self, repo: &RepoName, digest: &Digest, now_ms: i64) -> Result<u64, u64> {
        match self.entries.get(&(repo.clone(), digest.clone())) {
            Some((size, read_at)) if read_at <= now_ms && now_ms - read_at < KEEP_MS => Ok(size),
            _ => Err(*self.generation()),
        }
    }

    /// Keeps what the database said, unless a removal happened since `generation`.
    pub(crate) fn keep(&self, repo: &RepoName, digest: &Digest, size: u64, generation: u64, now_ms: i64) {
        let current = self.generation();
        if *current == generation {
            self.entries.insert((repo.clone(), digest.clone()), (size, now_ms));
        }
    }

    /// Forgets the link of `digest` to `repo`, or to every repository when `repo` is None.
    pub(crate) fn forget(&self, repo: Option<&RepoName>, digest: &Digest) {
        let mut generation = self.generation();
        *generation += 1;
        match repo {
            Some(repo) => {
                self.entries.remove(&(repo.clone(), digest.clone()));
            }
            None => self.entries.retain(|(_, d), _| d != digest),
        }
    }
}

#[derive(Clone)]
struct ByLength;

impl Weighter<Digest, Bytes> for ByLength {
    fn weight(&self, _digest: &Digest, bytes: &Bytes) -> u64 {
        // The key and the entry's bookkeeping cost ~ 200 bytes beside the content.
        bytes.len() as u64 + 200
    }
}

pub(crate) struct SmallBlobs(Cache<Digest, Bytes, ByLength>);

impl Default for SmallBlobs {
    fn default() -> Self {
        // The estimate of the number of entries only sizes the tables up front.
        SmallBlobs(Cache::with_weighter(4096, SMALL_BLOBS_BUDGET, ByLength))
    }
}

impl SmallBlobs {
    pub(crate) fn get(&self, digest: &Digest) -> Option<Bytes> {
        self.0.get(digest)
    }

    pub(crate) fn keep(&self, digest: &Digest, bytes: Bytes) {
        if bytes.len() as u64 <= SMALL_BLOB {
            self.0.insert(digest.clone(), bytes);
        }
    }

    pub(crate) fn forget(&self, digest: &Digest) {
        self.0.remove(digest);
    }

    #[cfg(test)]
    fn weight(&self) -> u64 {
        self.0.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str) -> RepoName {
        name.parse().unwrap()
    }

    fn digest(n: usize) -> Digest {
        format!("sha256:{n:064x}").parse().unwrap()
    }

    #[test]
    fn links_are_kept_for_a_while_by_the_clock() {
        let links = BlobLinks::default();
        let generation = links.get(&repo("a/b"), &digest(1), 1_000).unwrap_err();
        links.keep(&repo("a/b"), &digest(1), 42, generation, 1_000);
        assert_eq!(links.get(&repo("a/b"), &digest(1), 1_000 + KEEP_MS - 1), Ok(42));
        assert!(links.get(&repo("a/b"), &digest(1), 1_000 + KEEP_MS).is_err(), "expired");
        assert!(links.get(&repo("a/b"), &digest(1), 999).is_err(), "read in the future: the clock moved back");
        assert!(links.get(&repo("a/c"), &digest(1), 1_000).is_err(), "another repository");
        assert!(links.get(&repo("a/b"), &digest(2), 1_000).is_err(), "another blob");
    }

    #[test]
    fn link_removals_are_exact_even_against_a_racing_lookup() {
        let links = BlobLinks::default();
        for r in ["a/b", "a/c"] {
            let generation = links.get(&repo(r), &digest(1), 0).unwrap_err();
            links.keep(&repo(r), &digest(1), 7, generation, 0);
        }
        links.forget(Some(&repo("a/b")), &digest(1));
        assert!(links.get(&repo("a/b"), &digest(1), 1).is_err());
        assert_eq!(links.get(&repo("a/c"), &digest(1), 1), Ok(7), "only that repository's link went");

        // A lookup read the link from the database, then an unlink committed and forgot it:
        // the lookup's answer is stale and must not be kept.
        let generation = links.get(&repo("a/b"), &digest(2), 1).unwrap_err();
        links.forget(Some(&repo("a/b")), &digest(2));
        links.keep(&repo("a/b"), &digest(2), 7, generation, 1);
        assert!(links.get(&repo("a/b"), &digest(2), 1).is_err());

        // Garbage collection forgets a blob in every repository.
        links.forget(None, &digest(1));
        assert!(links.get(&repo("a/c"), &digest(1), 1).is_err());
    }

    #[test]
    fn links_are_bounded() {
        let links = BlobLinks::default();
        for i in 0..MAX_LINKS * 3 {
            links.keep(&repo("a/b"), &digest(i), 1, 0, 0);
        }
        assert!(links.entries.len() <= MAX_LINKS, "{}", links.entries.len());
        assert!(links.entries.len() >= MAX_LINKS / 2, "{}", links.entries.len());
    }

    #[test]
    fn small_blobs_stay_within_their_budget() {
        let blobs = SmallBlobs::default();
        let big = Bytes::from(vec![7u8; SMALL_BLOB as usize + 1]);
        blobs.keep(&digest(0), big);
        assert!(blobs.get(&digest(0)).is_none(), "above SMALL_BLOB: not kept");
        let small = Bytes::from(vec![1u8; SMALL_BLOB as usize]);
        for i in 1..1000 {
            blobs.keep(&digest(i), small.clone());
            assert!(blobs.weight() <= SMALL_BLOBS_BUDGET);
        }
        blobs.keep(&digest(5000), Bytes::from_static(b"config"));
        assert_eq!(blobs.get(&digest(5000)).as_deref(), Some(&b"config"[..]));
        blobs.forget(&digest(5000));
        assert!(blobs.get(&digest(5000)).is_none());
    }
}
