//! Recent results: product pages, and the search index itself (one entry). A store's
//! traffic is read-heavy and repetitive (popular products above all), so each replica
//! keeps what it served, keyed by what was asked. (Search pages are not kept: they are
//! worked out from the in-memory index in microseconds.)
//!
//! - Concurrent requests for a page not yet cached wait for one computation instead of
//!   each running the query.
//! - A page older than `FRESH` is still served while one background refresh replaces it,
//!   so a popular page never makes a customer wait once it is cached; one older than
//!   `MAX_AGE` is not served at all.
//! - This replica's own catalog writes empty the cache at once; another replica's writes
//!   and changing pull counts show within `FRESH` (plus one refresh): about a minute.
//! - Memory is bounded by an estimate of the pages' size; the oldest pages go first.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, Semaphore};

use crate::CatalogError;
use crate::model::Listing;

// A refresh costs as much as the search did, and popular pages are asked for all the
// time: refreshing each once a minute keeps that cost small beside the traffic.
const FRESH: Duration = Duration::from_secs(60);
const MAX_AGE: Duration = Duration::from_secs(600);
const BUDGET_BYTES: usize = 32 << 20;

/// What a cached value costs to keep, roughly: the heap bytes it holds.
pub trait Weigh {
    fn weigh(&self) -> usize;
}

struct Slot<T> {
    page: OnceCell<T>,
    born: Instant,
    refreshing: AtomicBool,
}

impl<T> Slot<T> {
    fn new(born: Instant) -> Arc<Slot<T>> {
        Arc::new(Slot { page: OnceCell::new(), born, refreshing: AtomicBool::new(false) })
    }
}

struct Entries<T> {
    slots: HashMap<String, (Arc<Slot<T>>, usize)>,
    bytes: usize,
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries { slots: HashMap::new(), bytes: 0 }
    }
}

impl<T> Entries<T> {
    fn remove(&mut self, key: &str) {
        if let Some((_, weight)) = self.slots.remove(key) {
            self.bytes -= weight;
        }
    }

    /// Drops the oldest pages until the estimate fits the budget.
    fn shrink(&mut self) {
        if self.bytes <= BUDGET_BYTES {
            return;
        }
        let mut by_age: Vec<(Instant, String)> = self.slots.iter().map(|(k, (slot, _))| (slot.born, k.clone())).collect();
        by_age.sort_unstable();
        for (_, key) in by_age {
            if self.bytes <= BUDGET_BYTES * 3 / 4 {
                break;
            }
            self.remove(&key);
        }
    }
}

pub struct ResultCache<T> {
    entries: Arc<Mutex<Entries<T>>>,
    /// Background refreshes run one at a time: when many stale pages are asked for at
    /// once they are served stale and refreshed in turn, instead of every refresh
    /// competing with the requests for the CPU.
    refresher: Arc<Semaphore>,
}

impl<T> Clone for ResultCache<T> {
    fn clone(&self) -> Self {
        ResultCache { entries: self.entries.clone(), refresher: self.refresher.clone() }
    }
}

impl<T> Default for ResultCache<T> {
    fn default() -> Self {
        ResultCache { entries: Arc::default(), refresher: Arc::new(Semaphore::new(1)) }
    }
}

impl<T: Weigh + Clone + Send + Sync + 'static> ResultCache<T> {
    /// The value cached under `key`, or `compute`'s, shared with concurrent callers.
    pub async fn get_or_compute<F, Fut>(&self, key: String, compute: F) -> Result<T, CatalogError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, CatalogError>> + Send + 'static,
    {
        let slot = {
            let mut entries = self.entries.lock().expect("search cache");
            match entries.slots.get(&key) {
                Some((slot, _)) if slot.born.elapsed() < MAX_AGE => slot.clone(),
                _ => {
                    entries.remove(&key);
                    let slot = Slot::new(Instant::now());
                    // Weighed once computed (see `weigh`); until then it costs nothing.
                    entries.slots.insert(key.clone(), (slot.clone(), 0));
                    slot
                }
            }
        };
        if let Some(page) = slot.page.get().cloned() {
            if slot.born.elapsed() >= FRESH
                && let Ok(permit) = self.refresher.clone().try_acquire_owned()
                && !slot.refreshing.swap(true, Ordering::AcqRel)
            {
                let cache = self.clone();
                tokio::spawn(async move {
                    if let Ok(page) = compute().await {
                        cache.replace(&key, &slot, page);
                    }
                    // A failed refresh leaves the slot stale and refreshable again.
                    slot.refreshing.store(false, Ordering::Release);
                    drop(permit);
                });
            }
            return Ok(page);
        }
        let page = slot.page.get_or_try_init(compute).await?.clone();
        self.weigh(&key, &slot, &page);
        Ok(page)
    }

    /// Records a computed page's size against the budget (once per slot).
    fn weigh(&self, key: &str, slot: &Arc<Slot<T>>, page: &T) {
        let mut entries = self.entries.lock().expect("search cache");
        let Some((current, weight)) = entries.slots.get_mut(key) else { return };
        if !Arc::ptr_eq(current, slot) || *weight != 0 {
            return;
        }
        *weight = page.weigh();
        entries.bytes += *weight;
        entries.shrink();
    }

    /// Puts a refreshed page in place of `old`, unless the cache was emptied meanwhile (a
    /// write: the refresh may have read the catalog from before it).
    fn replace(&self, key: &str, old: &Arc<Slot<T>>, page: T) {
        let mut entries = self.entries.lock().expect("search cache");
        if !entries.slots.get(key).is_some_and(|(current, _)| Arc::ptr_eq(current, old)) {
            return;
        }
        entries.remove(key);
        let weight = page.weigh();
        let slot = Arc::new(Slot { page: OnceCell::new_with(Some(page)), born: Instant::now(), refreshing: AtomicBool::new(false) });
        entries.slots.insert(key.to_owned(), (slot, weight));
        entries.bytes += weight;
        entries.shrink();
    }

    pub fn clear(&self) {
        *self.entries.lock().expect("search cache") = Entries::default();
    }
}

impl Weigh for Listing {
    /// Its text, plus a fixed overhead for the rest.
    fn weigh(&self) -> usize {
        let text = self.long_description.len() + self.install_instructions.len() + self.support_info.len() + self.sla.len();
        1024 + text + self.short_description.len() + self.tiers.len() * 256
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A cached value: a number standing for a page.
    #[derive(Clone)]
    struct Page(i64);

    impl Weigh for Page {
        fn weigh(&self) -> usize {
            8
        }
    }

    type SearchCache = ResultCache<Page>;

    fn page(n: i64) -> Page {
        Page(n)
    }

    #[tokio::test]
    async fn concurrent_misses_compute_once() {
        let cache = SearchCache::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let ask = || {
            let (cache, runs) = (cache.clone(), runs.clone());
            async move {
                cache
                    .get_or_compute("k".into(), move || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(page(7))
                    })
                    .await
            }
        };
        let pages = futures::future::join_all((0..8).map(|_| tokio::spawn(ask()))).await;
        assert!(pages.into_iter().all(|p| p.unwrap().unwrap().0 == 7));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn stale_pages_are_served_while_one_refresh_at_a_time_runs() {
        let cache = SearchCache::default();
        let old = Instant::now() - FRESH - Duration::from_secs(1);
        for key in ["a", "b"] {
            let slot = Arc::new(Slot { page: OnceCell::new_with(Some(page(1))), born: old, refreshing: AtomicBool::new(false) });
            let mut entries = cache.entries.lock().unwrap();
            entries.slots.insert(key.into(), (slot, 1));
            entries.bytes += 1;
        }
        let runs = Arc::new(AtomicUsize::new(0));
        let slow = |runs: Arc<AtomicUsize>| {
            move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(page(2))
            }
        };
        // Both are stale: both are served at once; only one refresh starts.
        assert_eq!(cache.get_or_compute("a".into(), slow(runs.clone())).await.unwrap().0, 1);
        assert_eq!(cache.get_or_compute("b".into(), slow(runs.clone())).await.unwrap().0, 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cache.get_or_compute("a".into(), slow(runs.clone())).await.unwrap().0, 2, "refreshed");
        // "b" was passed over, and is refreshed when next asked for.
        assert_eq!(cache.get_or_compute("b".into(), slow(runs.clone())).await.unwrap().0, 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(cache.get_or_compute("b".into(), slow(runs.clone())).await.unwrap().0, 2);
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_clear_forgets() {
        let cache = SearchCache::default();
        let failed = cache.get_or_compute("k".into(), || async { Err(CatalogError::Invalid("no".into())) }).await;
        assert!(failed.is_err());
        assert_eq!(cache.get_or_compute("k".into(), || async { Ok(page(1)) }).await.unwrap().0, 1);
        assert_eq!(cache.get_or_compute("k".into(), || async { Ok(page(2)) }).await.unwrap().0, 1, "cached");
        cache.clear();
        assert_eq!(cache.get_or_compute("k".into(), || async { Ok(page(3)) }).await.unwrap().0, 3);
    }

    #[test]
    fn the_oldest_pages_leave_first_when_over_budget() {
        let cache = SearchCache::default();
        let mut entries = cache.entries.lock().unwrap();
        let start = Instant::now();
        for i in 0..10u64 {
            let slot = Arc::new(Slot { page: OnceCell::new(), born: start + Duration::from_millis(i), refreshing: AtomicBool::new(false) });
            entries.slots.insert(format!("k{i}"), (slot, BUDGET_BYTES / 8));
            entries.bytes += BUDGET_BYTES / 8;
        }
        entries.shrink();
        assert!(entries.bytes <= BUDGET_BYTES * 3 / 4);
        assert!(!entries.slots.contains_key("k0") && entries.slots.contains_key("k9"));
    }
}
