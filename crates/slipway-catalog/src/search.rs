//! Turning what a customer typed into a search: words, spelling corrections against the
//! indexed vocabulary, and the last word matched as a prefix (it may still be typed).

use serde::Deserialize;
use utoipa::IntoParams;

use crate::index::{Filter, Order, Query, SearchIndex};

use crate::CatalogError;
use crate::model::{ProductType, TrustLevel, category_title};
use crate::text::words;
use crate::typeahead::TypedWord;

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
/// How many completions of an unknown, uncorrectable word are weighed.
const COMPLETIONS_LOOKED_AT: usize = 64;

impl SearchParams {
    pub fn has_words(&self) -> bool {
        words(&self.q).next().is_some()
    }

    /// The index's query, with filters validated and query words corrected.
    pub(crate) fn query<T>(&self, index: &SearchIndex<T>) -> Result<Query, CatalogError> {
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
        let pricing = match some(&self.pricing).as_deref() {
            None => None,
            Some("free") => Some(Filter::Free),
            Some("paid") => Some(Filter::Paid),
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
            None | Some("relevance") => Order::Relevance,
            Some("popular") => Order::Popularity,
            Some("updated") => Order::Updated,
            Some(other) => return Err(bad("sort order", other)),
        };
        let certified = matches!(self.certified.as_deref(), Some("1" | "true" | "on")).then_some(Filter::Certified);
        let filters = [
            category.map(Filter::Category),
            product_type.map(Filter::ProductType),
            trust_level.map(Filter::TrustLevel),
            platform.map(Filter::Platform),
            some(&self.publisher).map(Filter::Publisher),
            certified,
            pricing,
        ];
        let words = self.typed_words(index, false)?;
        Ok(Query { words: words.into_iter().map(|w| w.alternatives).collect(), filters: filters.into_iter().flatten().collect(), order })
    }

    /// The words of `q`, each with its spelling corrections when the index does not know
    /// it. `prefix_last` treats the last word as still being typed (typeahead).
    pub(crate) fn typed_words<T>(&self, index: &SearchIndex<T>, prefix_last: bool) -> Result<Vec<TypedWord>, CatalogError> {
        if self.q.chars().count() > 200 {
            return Err(CatalogError::Invalid("q: at most 200 characters".into()));
        }
        let typed: Vec<String> = words(&self.q).take(12).collect();
        if typed.is_empty() {
            return Ok(Vec::new());
        }
        let last = typed.len() - 1;
        Ok(typed
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let prefix = prefix_last && i == last;
                TypedWord { alternatives: alternatives(w, index, prefix), prefix }
            })
            .collect())
    }
}

/// A query word or, when the index does not know it, the known words it is likely a
/// misspelling of. A word being typed matches as a prefix and is never corrected while
/// some indexed word starts with it.
fn alternatives<T>(word: &str, index: &SearchIndex<T>, prefix: bool) -> Vec<String> {
    let known = if prefix { index.holds_prefix(word) } else { index.holds(word) };
    // Digits, very short words and words the index holds are taken as typed.
    if known || word.chars().count() < 3 || word.chars().any(|c| c.is_ascii_digit()) {
        return vec![word.to_owned()];
    }
    let budget = if word.chars().count() <= SHORT_WORD { 1 } else { 2 };
    let mut scored: Vec<(usize, &str)> = index
        .corrections_near(word, budget)
        .filter_map(|v| {
            let d = strsim::damerau_levenshtein(word, v);
            (d <= budget).then_some((d, v))
        })
        .collect();
    scored.sort();
    let mut alternatives: Vec<String> = scored.into_iter().take(MAX_CORRECTIONS).map(|(_, v)| v.to_owned()).collect();
    if alternatives.is_empty() {
        // No correction, but typeahead would have completed it ("nimbs" folds to "nimb",
        // which starts "nimbus"): the shortest completions, so Enter finds what the
        // suggestions showed. Bounded: at most COMPLETIONS_LOOKED_AT words are looked at.
        let mut completions: Vec<&str> = index.completions(word).take(COMPLETIONS_LOOKED_AT).collect();
        completions.sort_by_key(|w| (w.len(), *w));
        alternatives.extend(completions.into_iter().take(MAX_CORRECTIONS).map(str::to_owned));
    }
    if alternatives.is_empty() {
        alternatives.push(word.to_owned());
    }
    alternatives
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Document;

    /// An index whose listings are named after the words it knows.
    fn index() -> SearchIndex<()> {
        let named = |name: &str| Document {
            item: (),
            id: name.into(),
            fields: [name.into(), String::new(), String::new(), String::new(), "sharding".into()],
            filters: Vec::new(),
            pulls: 0,
            updated_at: 0,
        };
        SearchIndex::build(["postgres", "redis", "nginx", "database", "monitoring", "nimbus", "graph", "sharing"].map(named).into())
    }

    /// What the first word of `q` stands for.
    fn alternatives_of<T>(q: &str, index: &SearchIndex<T>, prefix: bool) -> Vec<String> {
        let params = SearchParams { q: q.into(), ..SearchParams::default() };
        params.typed_words(index, prefix).unwrap().remove(0).alternatives
    }

    #[test]
    fn misspellings_are_corrected_within_budget() {
        let index = index();
        // Words are singular: "postgres" is indexed as "postgre".
        assert_eq!(alternatives_of("postgers", &index, false), ["postgre"]);
        assert_eq!(alternatives_of("reddis", &index, false), ["redis"]);
        assert_eq!(alternatives_of("ngnix", &index, false), ["nginx"]);
        assert_eq!(alternatives_of("databse", &index, false), ["database"]);
        // Too far from anything: kept as typed (it then finds nothing).
        assert_eq!(alternatives_of("zzzzzz", &index, false), ["zzzzzz"]);
        // Digits are never corrected.
        assert_eq!(alternatives_of("redis7", &index, false), ["redis7"]);
    }

    #[test]
    fn a_word_any_field_holds_is_taken_as_typed() {
        // Only long descriptions hold it; it is not "corrected" towards a name's word.
        assert_eq!(alternatives_of("sharding", &index(), false), ["sharding"]);
        assert_eq!(alternatives_of("shardng", &index(), false), ["sharing"]);
    }

    #[test]
    fn a_word_being_typed_is_a_prefix() {
        let index = index();
        assert_eq!(alternatives_of("nimb", &index, true), ["nimb"]);
        assert_eq!(alternatives_of("monitorng", &index, true), ["monitoring"]);
    }
}
