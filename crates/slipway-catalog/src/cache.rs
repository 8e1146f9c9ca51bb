//! Recent search results. A store's searches are read-heavy and repetitive (the same
//! categories, popular words, typeahead prefixes), so each replica keeps the pages it
//! served for a few seconds. Its own catalog writes empty the cache at once; another
//! replica's writes show within `TTL`, as do changing pull counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::Listing;

const TTL: Duration = Duration::from_secs(5);
/// Entries kept before the cache starts over (pages are small: at most 100 listings).
const CAPACITY: usize = 4_096;

/// One cached page: the listings and the total that matched.
pub type Page = Arc<(Vec<Listing>, i64)>;

#[derive(Clone, Default)]
pub struct SearchCache {
    entries: Arc<Mutex<HashMap<String, (Instant, Page)>>>,
}

impl SearchCache {
    pub fn get(&self, key: &str) -> Option<Page> {
        let entries = self.entries.lock().expect("search cache");
        entries.get(key).filter(|(at, _)| at.elapsed() < TTL).map(|(_, page)| page.clone())
    }

    pub fn put(&self, key: String, page: Page) {
        let mut entries = self.entries.lock().expect("search cache");
        if entries.len() >= CAPACITY {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), page));
    }

    pub fn clear(&self) {
        self.entries.lock().expect("search cache").clear();
    }
}
