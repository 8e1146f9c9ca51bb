//! Recent search results. A store's searches are read-heavy and repetitive (the same
//! categories, popular words, typeahead prefixes), so each replica keeps the pages it
//! served, keyed by what was asked (before spelling correction, which then costs nothing
//! on a hit).
//!
//! - Concurrent requests for a page not yet cached wait for one computation instead of
//!   each running the query.
//! - A page older than `FRESH` is still served while one background refresh replaces it,
//!   so a popular page never makes a customer wait once it is cached; one older than
//!   `MAX_AGE` is not served at all.
//! - This replica's own catalog writes empty the cache at once; another replica's writes
//!   and changing pull counts show within `FRESH` (plus one refresh).
//! - Memory is bounded by an estimate of the pages' size; the oldest pages go first.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::model::Listing;
use crate::CatalogError;

const FRESH: Duration = Duration::from_secs(10);
const MAX_AGE: Duration = Duration::from_secs(60);
const BUDGET_BYTES: usize = 32 << 20;

/// One cached page: the listings and the total that matched.
pub type Page = Arc<(Vec<Listing>, i64)>;

struct Slot {
    page: OnceCell<Page>,
    born: Instant,
    refreshing: AtomicBool,
}

impl Slot {
    fn new(born: Instant) -> Arc<Slot> {
        Arc::new(Slot { page: OnceCell::new(), born, refreshing: AtomicBool::new(false) })
    }
}

#[derive(Default)]
struct Entries {
    slots: HashMap<String, (Arc<Slot>, usize)>,
    bytes: usize,
}

impl Entries {
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

#[derive(Clone, Default)]
pub struct SearchCache {
    entries: Arc<Mutex<Entries>>,
}

impl SearchCache {
    /// The page cached under `key`, or `compute`'s, shared with concurrent callers.
    pub async fn get_or_compute<F, Fut>(&self, key: String, compute: F) -> Result<Page, CatalogError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Page, CatalogError>> + Send + 'static,
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
            if slot.born.elapsed() >= FRESH && !slot.refreshing.swap(true, Ordering::AcqRel) {
                let cache = self.clone();
                tokio::spawn(async move {
                    if let Ok(page) = compute().await {
                        cache.replace(&key, &slot, page);
                    }
                });
            }
            return Ok(page);
        }
        let page = slot.page.get_or_try_init(compute).await?.clone();
        self.weigh(&key, &slot, &page);
        Ok(page)
    }

    /// Records a computed page's size against the budget (once per slot).
    fn weigh(&self, key: &str, slot: &Arc<Slot>, page: &Page) {
        let mut entries = self.entries.lock().expect("search cache");
        let Some((current, weight)) = entries.slots.get_mut(key) else { return };
        if !Arc::ptr_eq(current, slot) || *weight != 0 {
            return;
        }
        *weight = estimate(page);
        entries.bytes += *weight;
        entries.shrink();
    }

    /// Puts a refreshed page in place of `old`, unless the cache was emptied meanwhile (a
    /// write: the refresh may have read the catalog from before it).
    fn replace(&self, key: &str, old: &Arc<Slot>, page: Page) {
        let mut entries = self.entries.lock().expect("search cache");
        if !entries.slots.get(key).is_some_and(|(current, _)| Arc::ptr_eq(current, old)) {
            return;
        }
        entries.remove(key);
        let slot = Slot::new(Instant::now());
        let weight = estimate(&page);
        slot.page.set(page).expect("a new slot is empty");
        entries.slots.insert(key.to_owned(), (slot, weight));
        entries.bytes += weight;
        entries.shrink();
    }

    pub fn clear(&self) {
        *self.entries.lock().expect("search cache") = Entries::default();
    }
}

/// Roughly what a page holds on the heap: its listings' text, plus a fixed overhead each.
fn estimate(page: &Page) -> usize {
    let text = |l: &Listing| {
        l.long_description.len() + l.install_instructions.len() + l.support_info.len() + l.sla.len() + l.short_description.len()
    };
    page.0.iter().map(|l| 1024 + text(l) + l.tiers.len() * 256).sum::<usize>() + 128
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn page(total: i64) -> Page {
        Arc::new((Vec::new(), total))
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
        assert!(pages.into_iter().all(|p| p.unwrap().unwrap().1 == 7));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_clear_forgets() {
        let cache = SearchCache::default();
        let failed = cache.get_or_compute("k".into(), || async { Err(CatalogError::Invalid("no".into())) }).await;
        assert!(failed.is_err());
        assert_eq!(cache.get_or_compute("k".into(), || async { Ok(page(1)) }).await.unwrap().1, 1);
        assert_eq!(cache.get_or_compute("k".into(), || async { Ok(page(2)) }).await.unwrap().1, 1, "cached");
        cache.clear();
        assert_eq!(cache.get_or_compute("k".into(), || async { Ok(page(3)) }).await.unwrap().1, 3);
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
