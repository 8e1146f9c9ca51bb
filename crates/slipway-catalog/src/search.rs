//! Turning what a customer typed into a search: words, spelling corrections against the
//! indexed vocabulary, and the last word matched as a prefix (it may still be typed).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use slipway_db::{Db, QueryWord, SearchOrder, SearchSpec};
use utoipa::IntoParams;

use crate::model::{category_title, ProductType, TrustLevel};
use crate::text::words;
use crate::typeahead::TypedWord;
use crate::CatalogError;

/// Search parameters, as the search page and GET /api/v1/search take them.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to look for in names, descriptions, tags and publisher names.
    #[serde(default)]
    pub q: String,
    /// A category slug.
    pub category: Option<String>,
    /// Only Docker Certified products: `true` or `1`.
    pub certified: Option<String>,
    /// image, plugin or agent.
    #[serde(rename = "type")]
    pub product_type: Option<String>,
    /// official, verified or community.
    pub trust: Option<String>,
    /// free (has a free tier) or paid (has a paid tier).
    pub pricing: Option<String>,
    /// An `os/architecture` pair, e.g. linux/arm64.
    pub platform: Option<String>,
    /// Only this publisher's products.
    pub publisher: Option<String>,
    /// relevance (default), popular or updated.
    pub sort: Option<String>,
}

/// Words of at most this many letters get one correction, longer ones two (edits).
const SHORT_WORD: usize = 5;
/// How many corrections a misspelt word may expand to.
const MAX_CORRECTIONS: usize = 3;
/// How stale another replica's additions to the vocabulary may be.
const VOCABULARY_TTL: Duration = Duration::from_secs(30);

/// The indexed words worth correcting towards (no digits: product numbers and versions
/// are taken as typed), sorted, each with the set of letters it uses.
struct Words {
    loaded: Instant,
    sorted: Vec<String>,
    letters: Vec<u64>,
}

/// The indexed words, for spelling correction; reloaded when stale or after a local change.
#[derive(Clone, Default)]
pub struct Vocabulary {
    inner: Arc<RwLock<Option<Arc<Words>>>>,
}

impl Vocabulary {
    pub fn invalidate(&self) {
        *self.inner.write().expect("vocabulary lock") = None;
    }

    async fn words(&self, db: &Db) -> Result<Arc<Words>, CatalogError> {
        if let Some(words) = self.inner.read().expect("vocabulary lock").as_ref()
            && words.loaded.elapsed() < VOCABULARY_TTL
        {
            return Ok(words.clone());
        }
        let mut sorted = db.search_terms().await?;
        sorted.sort();
        let letters = sorted.iter().map(|w| letter_set(w)).collect();
        let words = Arc::new(Words { loaded: Instant::now(), sorted, letters });
        *self.inner.write().expect("vocabulary lock") = Some(words.clone());
        Ok(words)
    }
}

/// Which characters a word uses, folded into 64 bits. One edit changes at most two bits
/// (a substitution drops one and adds one), so words whose sets differ in more than
/// `2 * edits` bits are skipped without computing their distance.
fn letter_set(word: &str) -> u64 {
    word.chars().fold(0, |set, c| set | 1 << (c as u32 % 64))
}

impl SearchParams {
    pub fn has_words(&self) -> bool {
        words(&self.q).next().is_some()
    }

    /// What identifies this search among others: its words as the index sees them, and
    /// its filters as given.
    pub(crate) fn cache_key(&self) -> String {
        let q: Vec<String> = words(&self.q).take(12).collect();
        let SearchParams { category, certified, product_type, trust, pricing, platform, publisher, sort, .. } = self;
        format!("{q:?} {category:?} {certified:?} {product_type:?} {trust:?} {pricing:?} {platform:?} {publisher:?} {sort:?}")
    }

    /// The database's search, with filters validated and query words corrected.
    pub(crate) async fn spec(&self, db: &Db, vocabulary: &Vocabulary) -> Result<SearchSpec, CatalogError> {
        let bad = |what: &str, v: &str| CatalogError::Invalid(format!("unknown {what} {v:?}"));
        let some = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let category = some(&self.category);
        if let Some(c) = &category {
            category_title(c).ok_or_else(|| bad("category", c))?;
        }
        let product_type = some(&self.product_type);
        if let Some(t) = &product_type {
            ProductType::parse(t).ok_or_else(|| bad("product type", t))?;
        }
        let trust_level = some(&self.trust);
        if let Some(t) = &trust_level {
            TrustLevel::parse(t).ok_or_else(|| bad("trust level", t))?;
        }
        let free = match some(&self.pricing).as_deref() {
            None => None,
            Some("free") => Some(true),
            Some("paid") => Some(false),
            Some(other) => return Err(bad("pricing", other)),
        };
        let platform = some(&self.platform);
        if let Some(p) = &platform {
            let ok = p.len() <= 64 && p.contains('/') && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
            if !ok {
                return Err(bad("platform", p));
            }
        }
        let order = match some(&self.sort).as_deref() {
            None | Some("relevance") => SearchOrder::Relevance,
            Some("popular") => SearchOrder::Popularity,
            Some("updated") => SearchOrder::Updated,
            Some(other) => return Err(bad("sort order", other)),
        };
        let words = self.typed_words(db, vocabulary, false).await?;
        Ok(SearchSpec {
            words: words.into_iter().map(|w| QueryWord { alternatives: w.alternatives }).collect(),
            category,
            certified: matches!(self.certified.as_deref(), Some("1" | "true" | "on")),
            product_type,
            trust_level,
            free,
            platform,
            publisher: some(&self.publisher),
            featured: false,
            order,
            offset: 0,
            limit: 20,
        })
    }

    /// The words of `q`, each with its spelling corrections when the index does not know
    /// it. `prefix_last` treats the last word as still being typed (typeahead).
    pub(crate) async fn typed_words(&self, db: &Db, vocabulary: &Vocabulary, prefix_last: bool) -> Result<Vec<TypedWord>, CatalogError> {
        if self.q.chars().count() > 200 {
            return Err(CatalogError::Invalid("q: at most 200 characters".into()));
        }
        let typed: Vec<String> = words(&self.q).take(12).collect();
        if typed.is_empty() {
            return Ok(Vec::new());
        }
        let vocabulary = vocabulary.words(db).await?;
        let last = typed.len() - 1;
        Ok(typed
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let prefix = prefix_last && i == last;
                TypedWord { alternatives: correct(w, &vocabulary.sorted, &vocabulary.letters, prefix), prefix }
            })
            .collect())
    }
}

/// A query word or, when the index does not know it, the known words it is likely a
/// misspelling of. A word being typed matches as a prefix and is never corrected while
/// some indexed word starts with it.
fn correct(word: &str, vocabulary: &[String], letters: &[u64], prefix: bool) -> Vec<String> {
    let known = if prefix {
        let start = vocabulary.partition_point(|v| v.as_str() < word);
        vocabulary.get(start).is_some_and(|v| v.starts_with(word))
    } else {
        vocabulary.binary_search_by(|v| v.as_str().cmp(word)).is_ok()
    };
    // Digits, very short words and words the index holds are taken as typed.
    if known || word.chars().count() < 3 || word.chars().any(|c| c.is_ascii_digit()) {
        return vec![word.to_owned()];
    }
    let budget = if word.chars().count() <= SHORT_WORD { 1 } else { 2 };
    let word_letters = letter_set(word);
    let mut scored: Vec<(usize, &String)> = vocabulary
        .iter()
        .zip(letters)
        .filter(|(v, l)| v.len().abs_diff(word.len()) <= budget && (*l ^ word_letters).count_ones() as usize <= 2 * budget)
        .filter_map(|(v, _)| {
            let d = strsim::damerau_levenshtein(word, v);
            (d <= budget).then_some((d, v))
        })
        .collect();
    scored.sort();
    let mut alternatives: Vec<String> = scored.into_iter().take(MAX_CORRECTIONS).map(|(_, v)| v.clone()).collect();
    if alternatives.is_empty() {
        alternatives.push(word.to_owned());
    }
    alternatives
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vec<String> {
        let mut v: Vec<String> = ["postgres", "redis", "nginx", "database", "monitoring", "nimbus", "graph"].map(String::from).to_vec();
        v.sort();
        v
    }

    fn correct(word: &str, vocabulary: &[String], prefix: bool) -> Vec<String> {
        let letters: Vec<u64> = vocabulary.iter().map(|w| letter_set(w)).collect();
        super::correct(word, vocabulary, &letters, prefix)
    }

    #[test]
    fn misspellings_are_corrected_within_budget() {
        let v = vocabulary();
        assert_eq!(correct("postgers", &v, false), ["postgres"]);
        assert_eq!(correct("reddis", &v, false), ["redis"]);
        assert_eq!(correct("ngnix", &v, false), ["nginx"]);
        assert_eq!(correct("databse", &v, false), ["database"]);
        // Too far from anything: kept as typed (it then finds nothing).
        assert_eq!(correct("zzzzzz", &v, false), ["zzzzzz"]);
    }

    #[test]
    fn a_word_being_typed_is_a_prefix() {
        let v = vocabulary();
        assert_eq!(correct("nimb", &v, true), ["nimb"]);
        assert_eq!(correct("monitorng", &v, true), ["monitoring"]);
    }
}
