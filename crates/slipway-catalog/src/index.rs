//! Search from memory. Each replica holds an inverted index of every published listing
//! (its words, with each word's BM25 weight in each listing worked out in advance), its
//! filters, its browse orders, and what a result shows of it, so a search is a few list
//! walks and a sum per match, and asks nothing of the database.
//!
//! Why not the databases' full-text search: FTS5 and PostgreSQL rank every listing a
//! query matches, on every query. Over 100,000 listings that is 3 to 30 ms of CPU for one
//! search never asked before, dozens of times what 50 concurrent searches on two cores
//! can afford for each under 20 ms. In memory the same search, ranked the same way, takes
//! tens of microseconds, and SQLite and PostgreSQL return the very same results.
//!
//! Ranking is FTS5's `bm25()` with the weights search used there: name 10, tags 5,
//! publisher 3, short description 2, long description 1 (k1 = 1.2, b = 0.75); ties go to
//! the more popular listing.

use std::collections::HashMap;

use crate::text::words;

/// Listings are known by their rank, 0 the most popular (featured, then pulls), so every
/// list of listings kept in rank order is in browse order too.
pub type Rank = u32;
type WordId = u32;

/// The fields search reads, in this order, and how much a word found in each counts.
pub const FIELDS: usize = 5;
const WEIGHTS: [f32; FIELDS] = [10.0, 5.0, 3.0, 2.0, 1.0];
const K1: f32 = 1.2;
const B: f32 = 0.75;

/// What search knows of one listing, and `item`, what a search returns for it.
pub struct Document<T> {
    pub item: T,
    /// Breaks ties in the browse orders.
    pub id: String,
    /// Name, tags, publisher, short description, long description: text as written.
    pub fields: [String; FIELDS],
    /// The filters it passes, as [`Filter::key`]s.
    pub filters: Vec<String>,
    pub pulls: i64,
    pub updated_at: i64,
}

/// A filter a search can ask for; a listing passes those whose keys it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Category(String),
    ProductType(String),
    TrustLevel(String),
    Publisher(String),
    Platform(String),
    Certified,
    Featured,
    Free,
    Paid,
}

impl Filter {
    pub fn key(&self) -> String {
        match self {
            Filter::Category(v) => format!("category:{v}"),
            Filter::ProductType(v) => format!("type:{v}"),
            Filter::TrustLevel(v) => format!("trust:{v}"),
            Filter::Publisher(v) => format!("publisher:{v}"),
            Filter::Platform(v) => format!("platform:{v}"),
            Filter::Certified => "certified".into(),
            Filter::Featured => "featured".into(),
            Filter::Free => "free".into(),
            Filter::Paid => "paid".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Best match first; without words, the browse order (featured, then pulls).
    #[default]
    Relevance,
    /// Most pulls first.
    Popularity,
    /// Most recently updated first.
    Updated,
}

/// Which published listings a search returns: every word (any of its alternatives,
/// matched whole) and every filter must match.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub words: Vec<Vec<String>>,
    pub filters: Vec<Filter>,
    pub order: Order,
}

/// One page of a search: the listings' items in order, and how many match in all.
#[derive(Debug, PartialEq)]
pub struct Hits<'a, T> {
    pub items: Vec<&'a T>,
    pub total: usize,
}

pub struct SearchIndex<T> {
    /// What each listing's hits return, by rank.
    items: Vec<T>,
    /// Every word of every field, sorted.
    words: Vec<Box<str>>,
    /// The listings holding word `w`, by rank, and the word's BM25 score in each:
    /// `postings[posting_start[w]..posting_start[w + 1]]`, `scores` alike.
    postings: Vec<Rank>,
    scores: Vec<f32>,
    posting_start: Vec<u32>,
    /// Each word's list again, best score first (ties: by rank), as places in its list:
    /// a one-word search reads only as far as its page.
    by_score: Vec<u32>,
    /// The listings passing each filter.
    filters: HashMap<String, Listings>,
    /// The words that many listings hold, also as bits (see [`Listings`]).
    word_bits: HashMap<WordId, Bits>,
    by_pulls: Ordering,
    by_update: Ordering,
    /// The words worth correcting a misspelling towards: those of names, tags, publishers
    /// and short descriptions, of three letters or more and without digits (product
    /// numbers and versions are never corrected), sorted.
    corrections: Vec<Box<str>>,
    /// Each of those words' [`letter_set`].
    correction_letters: Vec<u64>,
}

impl<T> SearchIndex<T> {
    /// Indexes `documents`, given most popular first (featured, then pulls).
    pub fn build(documents: Vec<Document<T>>) -> SearchIndex<T> {
        let mut numbers: HashMap<String, WordId> = HashMap::new();
        // Each listing's distinct words with their weighted frequency (BM25's `tf`
        // summed over fields, each occurrence counting its field's weight), and its length.
        let mut listing_words: Vec<(WordId, f32)> = Vec::new();
        let mut listing_start = vec![0usize];
        let mut lengths = Vec::with_capacity(documents.len());
        let mut correctable: Vec<bool> = Vec::new();
        let mut filter_lists: HashMap<String, Vec<Rank>> = HashMap::new();
        let mut occurrences: Vec<(WordId, usize)> = Vec::new();
        for (rank, doc) in documents.iter().enumerate() {
            occurrences.clear();
            for (field, text) in doc.fields.iter().enumerate() {
                for word in words(text) {
                    let id = match numbers.get(&word) {
                        Some(&id) => id,
                        None => {
                            let id = numbers.len() as WordId;
                            numbers.insert(word, id);
                            correctable.push(false);
                            id
                        }
                    };
                    occurrences.push((id, field));
                }
            }
            lengths.push(occurrences.len() as f32);
            occurrences.sort_unstable();
            for chunk in occurrences.chunk_by(|a, b| a.0 == b.0) {
                let tf = chunk.iter().map(|&(_, field)| WEIGHTS[field]).sum();
                listing_words.push((chunk[0].0, tf));
                if chunk.iter().any(|&(_, field)| field < 4) {
                    correctable[chunk[0].0 as usize] = true;
                }
            }
            listing_start.push(listing_words.len());
            for key in &doc.filters {
                let list = filter_lists.entry(key.clone()).or_default();
                // A filter given twice (two identical platforms) lists the listing once.
                if list.last() != Some(&(rank as Rank)) {
                    list.push(rank as Rank);
                }
            }
        }
        // Words renumbered in sorted order.
        let mut sorted: Vec<(String, WordId)> = numbers.into_iter().collect();
        sorted.sort_unstable();
        let mut renumber = vec![0; sorted.len()];
        for (at, (_, met)) in sorted.iter().enumerate() {
            renumber[*met as usize] = at as WordId;
        }
        let corrections = sorted
            .iter()
            .filter(|(w, met)| correctable[*met as usize] && w.len() >= 3 && !w.bytes().any(|b| b.is_ascii_digit()))
            .map(|(w, _)| w.clone().into_boxed_str())
            .collect::<Vec<_>>();
        let correction_letters = corrections.iter().map(|w| letter_set(w)).collect();
        // Postings by counting: listings are visited by rank, so each list comes out sorted.
        let mut posting_start = vec![0u32; sorted.len() + 1];
        for &(w, _) in &listing_words {
            posting_start[renumber[w as usize] as usize + 1] += 1;
        }
        for w in 0..sorted.len() {
            posting_start[w + 1] += posting_start[w];
        }
        let listings = documents.len();
        let average_length = lengths.iter().sum::<f32>() / listings.max(1) as f32;
        let mut fill = posting_start.clone();
        let mut postings = vec![0; listing_words.len()];
        let mut scores = vec![0.0; listing_words.len()];
        for rank in 0..listings {
            let length_norm = 1.0 - B + B * lengths[rank] / average_length.max(1.0);
            for &(met, tf) in &listing_words[listing_start[rank]..listing_start[rank + 1]] {
                let w = renumber[met as usize] as usize;
                let holding = (posting_start[w + 1] - posting_start[w]) as f32;
                let at = fill[w] as usize;
                postings[at] = rank as Rank;
                scores[at] = idf(listings as f32, holding) * tf * (K1 + 1.0) / (tf + K1 * length_norm);
                fill[w] += 1;
            }
        }
        let word_bits = (0..sorted.len())
            .filter_map(|w| {
                let list = &postings[posting_start[w] as usize..posting_start[w + 1] as usize];
                Bits::worth_keeping(listings, list).then(|| (w as WordId, Bits::of(listings, list)))
            })
            .collect();
        let filters = filter_lists
            .into_iter()
            .map(|(key, list)| {
                (key, if Bits::worth_keeping(listings, &list) { Listings::Bits(Bits::of(listings, &list)) } else { Listings::List(list) })
            })
            .collect();
        let mut by_score: Vec<u32> = Vec::with_capacity(postings.len());
        for w in 0..sorted.len() {
            let range = posting_start[w] as usize..posting_start[w + 1] as usize;
            let scores = &scores[range.clone()];
            let mut places: Vec<u32> = (0..range.len() as u32).collect();
            places.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]).then(a.cmp(&b)));
            by_score.extend(places);
        }
        let by_pulls = Ordering::by(&documents, |d| d.pulls);
        let by_update = Ordering::by(&documents, |d| d.updated_at);
        SearchIndex {
            items: documents.into_iter().map(|d| d.item).collect(),
            words: sorted.into_iter().map(|(w, _)| w.into_boxed_str()).collect(),
            postings,
            scores,
            posting_start,
            by_score,
            filters,
            word_bits,
            by_pulls,
            by_update,
            corrections,
            correction_letters,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The listing of rank `rank`'s item.
    pub fn item(&self, rank: Rank) -> &T {
        &self.items[rank as usize]
    }

    /// Whether any listing holds `word` (in any field).
    pub fn holds(&self, word: &str) -> bool {
        self.word_id(word).is_some()
    }

    /// Whether any listing holds a word starting with `prefix`.
    pub fn holds_prefix(&self, prefix: &str) -> bool {
        let start = self.words.partition_point(|w| **w < *prefix);
        self.words.get(start).is_some_and(|w| w.starts_with(prefix))
    }

    /// Indexed words that start with `prefix`, in alphabetical order.
    pub fn completions<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let start = self.words.partition_point(|w| **w < *prefix);
        self.words[start..].iter().take_while(move |w| w.starts_with(prefix)).map(|w| &**w)
    }

    /// The words a misspelling of `word` with up to `edits` edits may be corrected
    /// towards: those close enough in length and letters to be worth measuring.
    pub fn corrections_near<'a>(&'a self, word: &'a str, edits: usize) -> impl Iterator<Item = &'a str> + 'a {
        let letters = letter_set(word);
        self.corrections
            .iter()
            .zip(&self.correction_letters)
            .filter(move |(w, l)| w.len().abs_diff(word.len()) <= edits && (*l ^ letters).count_ones() as usize <= 2 * edits)
            .map(|(w, _)| &**w)
    }

    /// Listings `offset..offset + limit` of those matching `query`, in its order.
    pub fn search(&self, query: &Query, offset: usize, limit: usize) -> Hits<'_, T> {
        let Some(matching) = self.matching(query) else {
            return Hits { items: Vec::new(), total: 0 };
        };
        let total = matching.count();
        let wanted = offset.saturating_add(limit).min(total);
        let ranks: Vec<Rank> = match query.order {
            Order::Relevance if !query.words.is_empty() => self.best(query, &matching, wanted),
            Order::Relevance => matching.ranks().take(wanted).collect(),
            Order::Popularity => matching.first_in(&self.by_pulls, wanted, total),
            Order::Updated => matching.first_in(&self.by_update, wanted, total),
        };
        Hits { items: ranks.into_iter().skip(offset).map(|r| &self.items[r as usize]).collect(), total }
    }

    /// The listings passing every filter and holding every word, as bits; `None` when
    /// none can.
    fn matching(&self, query: &Query) -> Option<Bits> {
        let mut matching = Bits::all(self.len());
        for filter in &query.filters {
            match self.filters.get(&filter.key())? {
                Listings::Bits(bits) => matching.and(bits),
                Listings::List(list) => matching.and(&Bits::of(self.len(), list)),
            }
        }
        for alternatives in &query.words {
            let known: Vec<WordId> = alternatives.iter().filter_map(|a| self.word_id(a)).collect();
            if let [word] = known[..]
                && let Some(bits) = self.word_bits.get(&word)
            {
                matching.and(bits);
                continue;
            }
            let mut any = Bits::none(self.len());
            for w in known {
                match self.word_bits.get(&w) {
                    Some(bits) => any.or(bits),
                    None => any.set_all(self.postings_of(w).0),
                }
            }
            matching.and(&any);
        }
        Some(matching)
    }

    /// The `wanted` best-scoring of the `matching` listings, best first: each listing's
    /// score is the sum of its scores for every alternative of every word.
    fn best(&self, query: &Query, matching: &Bits, wanted: usize) -> Vec<Rank> {
        let known: Vec<WordId> = query.words.iter().flatten().filter_map(|a| self.word_id(a)).collect();
        if let ([_], &[word]) = (&query.words[..], &known[..]) {
            // One word: its listings best first, as kept, read only as far as the page.
            let (ranks, _) = self.postings_of(word);
            let by_score = &self.by_score[self.posting_start[word as usize] as usize..self.posting_start[word as usize + 1] as usize];
            return by_score.iter().map(|&at| ranks[at as usize]).filter(|&r| matching.contains(r)).take(wanted).collect();
        }
        if wanted == 0 {
            return Vec::new();
        }
        let better = |a: &(f32, Rank), b: &(f32, Rank)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        // Each match's score, its words' lists searched forwards as the matches come in
        // rank order. Candidates are kept until there are twice as many as wanted, then cut
        // to the best `wanted`; the worst of those is the bar the rest must beat (a later
        // listing scoring only as well as the bar loses the tie).
        let mut lists: Vec<(&[Rank], &[f32])> = known.iter().map(|&w| self.postings_of(w)).collect();
        let mut kept: Vec<(f32, Rank)> = Vec::with_capacity(2 * wanted);
        let mut bar = f32::NEG_INFINITY;
        for rank in matching.ranks() {
            let mut score = 0.0;
            for (ranks, scores) in &mut lists {
                let skip = gallop(ranks, rank);
                (*ranks, *scores) = (&ranks[skip..], &scores[skip..]);
                if ranks.first() == Some(&rank) {
                    score += scores[0];
                }
            }
            if score <= bar {
                continue;
            }
            kept.push((score, rank));
            if kept.len() == 2 * wanted {
                kept.select_nth_unstable_by(wanted - 1, better);
                kept.truncate(wanted);
                bar = kept[wanted - 1].0;
            }
        }
        kept.sort_unstable_by(better);
        kept.truncate(wanted);
        kept.into_iter().map(|(_, r)| r).collect()
    }

    fn word_id(&self, word: &str) -> Option<WordId> {
        self.words.binary_search_by(|w| (**w).cmp(word)).ok().map(|at| at as WordId)
    }

    fn postings_of(&self, word: WordId) -> (&[Rank], &[f32]) {
        let range = self.posting_start[word as usize] as usize..self.posting_start[word as usize + 1] as usize;
        (&self.postings[range.clone()], &self.scores[range])
    }

    /// Bytes held, roughly, by its largest parts (its items aside).
    pub fn bytes(&self) -> usize {
        let words: usize = self.words.iter().map(|w| w.len() + 16).sum();
        let filters: usize = self.filters.values().map(Listings::bytes).sum();
        let bits = self.word_bits.len() * self.len().div_ceil(64) * 8;
        words + self.postings.len() * 12 + filters + bits + self.len() * 16
    }
}

/// Where in `list` (sorted) the first rank not below `rank` is: searched forwards in
/// growing steps, so walking a list this way costs about one comparison per rank skipped
/// when ranks come close together, and a few when they are far apart.
pub(crate) fn gallop(list: &[Rank], rank: Rank) -> usize {
    let mut step = 1;
    while step < list.len() && list[step] < rank {
        step *= 2;
    }
    let (low, high) = (step / 2, (step + 1).min(list.len()));
    low + list[low..high].partition_point(|&r| r < rank)
}

/// BM25's inverse document frequency as FTS5 computes it, floored at a millionth so a word
/// most listings hold still counts a little.
fn idf(listings: f32, holding: f32) -> f32 {
    let idf = ((listings - holding + 0.5) / (holding + 0.5)).ln();
    if idf > 0.0 { idf } else { 1e-6 }
}

/// Which characters a word uses, folded into 64 bits. One edit changes at most two bits
/// (a substitution drops one and adds one), so words whose sets differ in more than
/// `2 * edits` bits are skipped without computing their distance.
fn letter_set(word: &str) -> u64 {
    word.chars().fold(0, |set, c| set | 1 << (c as u32 % 64))
}

/// A filter's listings: a list, or bits when many listings pass it. Setting a bit per
/// listing of a long list is a chain of dependent writes to the same few words (most of
/// a search's time when it was done per query); bits kept ready are ANDed in a few
/// thousand steps, and take at most 32 times less room than the list would.
enum Listings {
    List(Vec<Rank>),
    Bits(Bits),
}

impl Listings {
    fn bytes(&self) -> usize {
        match self {
            Listings::List(list) => list.len() * 4 + 48,
            Listings::Bits(bits) => bits.0.len() * 8 + 48,
        }
    }
}

/// A set of listings, one bit per rank.
#[derive(Clone)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    fn none(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    fn all(len: usize) -> Bits {
        let mut bits = vec![u64::MAX; len.div_ceil(64)];
        if !len.is_multiple_of(64) {
            bits[len / 64] = (1 << (len % 64)) - 1;
        }
        Bits(bits)
    }

    /// Whether a list of `listings` ranks is worth keeping as bits too: when one listing
    /// in 32 or more is in it, its bits take at most 32 times less room than the list.
    pub(crate) fn worth_keeping(listings: usize, list: &[Rank]) -> bool {
        list.len() >= 64 && list.len() * 32 >= listings
    }

    pub(crate) fn of(len: usize, ranks: &[Rank]) -> Bits {
        let mut bits = Bits::none(len);
        bits.set_all(ranks);
        bits
    }

    fn set_all(&mut self, ranks: &[Rank]) {
        for &r in ranks {
            self.0[r as usize / 64] |= 1 << (r % 64);
        }
    }

    fn or(&mut self, other: &Bits) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a |= b);
    }

    pub(crate) fn and(&mut self, other: &Bits) {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a &= b);
    }

    pub(crate) fn contains(&self, rank: Rank) -> bool {
        self.0[rank as usize / 64] & (1 << (rank % 64)) != 0
    }

    fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The ranks set, in order.
    pub(crate) fn ranks(&self) -> impl Iterator<Item = Rank> + '_ {
        ranks_set(self.0.iter().copied())
    }

    pub(crate) fn into_ranks(self) -> impl Iterator<Item = Rank> {
        ranks_set(self.0.into_iter())
    }

    /// The first `wanted` of these `total` listings in `order`. When few match, sorting
    /// them by their place in the order beats walking it.
    fn first_in(&self, order: &Ordering, wanted: usize, total: usize) -> Vec<Rank> {
        if total.saturating_mul(16) < order.ranks.len() {
            let mut ranks: Vec<Rank> = self.ranks().collect();
            ranks.sort_unstable_by_key(|&r| order.place[r as usize]);
            ranks.truncate(wanted);
            return ranks;
        }
        order.ranks.iter().copied().filter(|&r| self.contains(r)).take(wanted).collect()
    }
}

/// The ranks whose bits are set in `words`, in order.
fn ranks_set(words: impl Iterator<Item = u64>) -> impl Iterator<Item = Rank> {
    words.enumerate().flat_map(|(at, mut word)| {
        std::iter::from_fn(move || {
            let bit = word.trailing_zeros();
            word &= word.wrapping_sub(1);
            (bit < 64).then_some(at as Rank * 64 + bit)
        })
    })
}

/// Every listing in some order other than rank, and each one's place in it.
struct Ordering {
    ranks: Vec<Rank>,
    place: Vec<u32>,
}

impl Ordering {
    /// Largest `key` first, then by id.
    fn by<T>(documents: &[Document<T>], key: impl Fn(&Document<T>) -> i64) -> Ordering {
        let mut ranks: Vec<Rank> = (0..documents.len() as Rank).collect();
        ranks.sort_by(|&a, &b| {
            let (a, b) = (&documents[a as usize], &documents[b as usize]);
            key(b).cmp(&key(a)).then_with(|| a.id.cmp(&b.id))
        });
        let mut place = vec![0; ranks.len()];
        for (at, &r) in ranks.iter().enumerate() {
            place[r as usize] = at as u32;
        }
        Ordering { ranks, place }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, name: &str, tags: &str, long: &str, filters: &[&str], pulls: i64, updated_at: i64) -> Document<String> {
        Document {
            item: id.into(),
            id: id.into(),
            fields: [name.into(), tags.into(), "acme".into(), String::new(), long.into()],
            filters: filters.iter().map(|f| (*f).to_owned()).collect(),
            pulls,
            updated_at,
        }
    }

    /// Most popular first, as the catalog gives them.
    fn index() -> SearchIndex<String> {
        SearchIndex::build(vec![
            doc("gateway", "Acme API Gateway", "api proxy", "routes traffic to a redis cache", &["category:networking", "free"], 900, 3),
            doc("db", "Nimbus DB", "database sql", "a database database database", &["category:databases", "certified", "paid"], 800, 1),
            doc("cache", "Nimbus Cache", "redis cache", "an in memory cache", &["category:databases", "free", "paid"], 50, 5),
            doc("guard", "Runtime Guard", "security", "watches redis and sql servers", &["category:security", "certified", "free"], 70, 4),
        ])
    }

    fn search<'a>(index: &'a SearchIndex<String>, words: &[&[&str]], filters: Vec<Filter>, order: Order) -> (Vec<&'a str>, usize) {
        let words = words.iter().map(|w| w.iter().map(|a| (*a).to_owned()).collect()).collect();
        let hits = index.search(&Query { words, filters, order }, 0, 10);
        (hits.items.into_iter().map(String::as_str).collect(), hits.total)
    }

    /// A page of `query`'s ids, and the total.
    fn page<'a>(index: &'a SearchIndex<String>, query: &Query, offset: usize, limit: usize) -> (Vec<&'a str>, usize) {
        let hits = index.search(query, offset, limit);
        (hits.items.into_iter().map(String::as_str).collect(), hits.total)
    }

    #[test]
    fn a_name_outranks_tags_which_outrank_descriptions() {
        let index = index();
        // "cache": the name of one, a tag of it too; the long description of another.
        assert_eq!(search(&index, &[&["cache"]], vec![], Order::Relevance), (vec!["cache", "gateway"], 2));
        // "redis": a tag of "cache", descriptions of "gateway" and "guard" (the shorter
        // listing, "guard", ranks first among those: BM25 normalises by length).
        assert_eq!(search(&index, &[&["redis"]], vec![], Order::Relevance).0, ["cache", "guard", "gateway"]);
        // Every word must match, anywhere.
        assert_eq!(search(&index, &[&["redis"], &["sql"]], vec![], Order::Relevance), (vec!["guard"], 1));
        assert_eq!(search(&index, &[&["redis"], &["nothing"]], vec![], Order::Relevance), (vec![], 0));
    }

    #[test]
    fn alternatives_match_any_and_add_up() {
        let index = index();
        // "db" holds "sql" in its tags; "guard" holds "sql" in its description and
        // "security" in its tags: both alternatives count for it.
        assert_eq!(search(&index, &[&["sql", "security"]], vec![], Order::Relevance), (vec!["guard", "db"], 2));
        assert_eq!(search(&index, &[&["sql"]], vec![], Order::Relevance), (vec!["db", "guard"], 2));
        // An alternative no listing holds changes nothing.
        assert_eq!(search(&index, &[&["sql", "sqll"]], vec![], Order::Relevance), (vec!["db", "guard"], 2));
    }

    #[test]
    fn filters_orders_and_pages() {
        let index = index();
        let databases = || vec![Filter::Category("databases".into())];
        assert_eq!(search(&index, &[], databases(), Order::Relevance), (vec!["db", "cache"], 2));
        assert_eq!(search(&index, &[], vec![Filter::Certified, Filter::Free], Order::Relevance), (vec!["guard"], 1));
        assert_eq!(search(&index, &[], vec![Filter::Category("nothing".into())], Order::Relevance), (vec![], 0));
        assert_eq!(search(&index, &[&["cache"]], databases(), Order::Relevance), (vec!["cache"], 1));
        // Without words, relevance is the order given (featured, then pulls).
        assert_eq!(search(&index, &[], vec![], Order::Relevance).0, ["gateway", "db", "cache", "guard"]);
        assert_eq!(search(&index, &[], vec![], Order::Popularity).0, ["gateway", "db", "guard", "cache"]);
        assert_eq!(search(&index, &[], vec![], Order::Updated).0, ["cache", "guard", "gateway", "db"]);
        assert_eq!(search(&index, &[&["redis"]], vec![], Order::Updated).0, ["cache", "guard", "gateway"]);
        let query = Query { words: vec![vec!["redis".into()]], ..Query::default() };
        assert_eq!(page(&index, &query, 1, 1), (vec!["guard"], 3));
        assert_eq!(page(&index, &query, 3, 10), (vec![], 3));
        assert_eq!(page(&index, &query, usize::MAX, 10), (vec![], 3));
    }

    #[test]
    fn scores_are_fts5_bm25() {
        // One listing of three holds "sql", once, in its tags (weight 5). It holds 7 words
        // (with its publisher's); the others 5.
        let index = SearchIndex::build(vec![
            doc("a", "one two", "sql", "three four five", &[], 0, 0),
            doc("b", "one two", "six", "seven", &[], 0, 0),
            doc("c", "one two", "eight", "nine", &[], 0, 0),
        ]);
        let (ranks, scores) = index.postings_of(index.word_id("sql").unwrap());
        assert_eq!(ranks, [0]);
        let idf = ((3.0f32 - 1.0 + 0.5) / (1.0 + 0.5)).ln();
        let (tf, length, average) = (5.0, 7.0, (7.0 + 5.0 + 5.0) / 3.0);
        let expected = idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / average));
        assert!((scores[0] - expected).abs() < 1e-6, "{} vs {expected}", scores[0]);
        // A word every listing holds still counts, a little.
        let (_, scores) = index.postings_of(index.word_id("one").unwrap());
        assert!(scores.iter().all(|&s| s > 0.0 && s < 1e-4));
    }

    #[test]
    fn a_large_catalogue_gives_the_same_answers_as_a_scan() {
        let vocabulary = ["data", "database", "gateway", "graph", "metric", "mesh", "proxy", "queue", "redis", "sql", "zeta", "unique"];
        // Every word but the last ("unique", below) is picked often.
        let pick = |i: usize, salt: usize| vocabulary[(i * salt + salt / 3) % (vocabulary.len() - 1)];
        let documents = || -> Vec<Document<String>> {
            (0..3_000)
                .map(|i| {
                    // Words and filters many listings hold are kept as bits, the others as
                    // lists ("unique", publishers): both kinds are covered.
                    let filters = [format!("category:c{}", i % 7), format!("platform:p{}", i % 3), format!("publisher:v{}", i % 50)]
                        .into_iter()
                        .chain((i % 5 == 0).then(|| "certified".to_owned()))
                        .collect::<Vec<_>>();
                    Document {
                        item: format!("l{i:05}"),
                        id: format!("l{i:05}"),
                        fields: [
                            format!("{} {}", pick(i, 1), pick(i, 7)),
                            format!("{} {}", pick(i, 3), if i % 40 == 0 { "unique" } else { "" }),
                            "publisher".into(),
                            format!("{} and {}", pick(i, 11), pick(i, 13)),
                            (0..i % 9).map(|k| pick(i + k, 5)).collect::<Vec<_>>().join(" "),
                        ],
                        filters,
                        pulls: (i * 7919 % 1000) as i64,
                        updated_at: (i * 104_729 % 5000) as i64,
                    }
                })
                .collect()
        };
        let index = SearchIndex::build(documents());
        let documents = documents();
        let unique = index.word_id("unique").unwrap();
        assert!(!index.word_bits.contains_key(&unique) && index.word_bits.contains_key(&index.word_id("zeta").unwrap()));
        assert!(matches!(index.filters["publisher:v10"], Listings::List(_)) && matches!(index.filters["platform:p1"], Listings::Bits(_)));
        let lengths: Vec<f32> = documents.iter().map(|d| d.fields.iter().map(|f| words(f).count()).sum::<usize>() as f32).collect();
        let average = lengths.iter().sum::<f32>() / lengths.len() as f32;
        // BM25 from the text itself, for one listing and one word.
        let holding: HashMap<&str, f32> = vocabulary
            .iter()
            .map(|&word| (word, documents.iter().filter(|d| d.fields.iter().any(|f| words(f).any(|w| w == word))).count() as f32))
            .collect();
        let score = |at: usize, word: &str| -> f32 {
            let holding = holding[word];
            let tf: f32 =
                documents[at].fields.iter().zip(WEIGHTS).map(|(f, weight)| words(f).filter(|w| w == word).count() as f32 * weight).sum();
            if tf == 0.0 {
                return 0.0;
            }
            idf(documents.len() as f32, holding) * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * lengths[at] / average))
        };
        let queries: Vec<Query> = vec![
            Query { words: vec![vec!["redis".into()]], ..Query::default() },
            Query { words: vec![vec!["graph".into()]], filters: vec![Filter::Platform("p2".into())], ..Query::default() },
            Query { words: vec![vec!["unique".into()]], filters: vec![Filter::Platform("p1".into())], ..Query::default() },
            Query { words: vec![vec!["unique".into(), "zeta".into()]], filters: vec![Filter::Publisher("v10".into())], ..Query::default() },
            Query { words: vec![vec!["data".into()], vec!["unique".into()]], ..Query::default() },
            Query { words: vec![vec!["data".into()], vec!["mesh".into()]], ..Query::default() },
            Query { words: vec![vec!["sql".into(), "queue".into()]], filters: vec![Filter::Certified], ..Query::default() },
            Query { words: vec![vec!["zeta".into()]], filters: vec![Filter::Category("c3".into())], order: Order::Popularity },
            Query { words: vec![], filters: vec![Filter::Platform("p1".into()), Filter::Category("c2".into())], order: Order::Updated },
            Query { words: vec![vec!["gateway".into()], vec!["graph".into()]], filters: vec![], order: Order::Updated },
            Query { words: vec![], filters: vec![Filter::Certified], order: Order::Popularity },
        ];
        for query in &queries {
            let passes = |d: &Document<String>| query.filters.iter().all(|f| d.filters.contains(&f.key()));
            let holds = |d: &Document<String>, alternatives: &Vec<String>| {
                alternatives.iter().any(|a| d.fields.iter().any(|f| words(f).any(|w| &w == a)))
            };
            let mut expected: Vec<(f32, usize)> = (0..documents.len())
                .filter(|&at| passes(&documents[at]) && query.words.iter().all(|w| holds(&documents[at], w)))
                .map(|at| (query.words.iter().flatten().map(|w| score(at, w)).sum(), at))
                .collect();
            match query.order {
                Order::Relevance => expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))),
                Order::Popularity => expected.sort_by_key(|&(_, at)| (-documents[at].pulls, documents[at].id.clone())),
                Order::Updated => expected.sort_by_key(|&(_, at)| (-documents[at].updated_at, documents[at].id.clone())),
            }
            for (offset, limit) in [(0, 20), (15, 10), (expected.len().saturating_sub(3), 20)] {
                let want: Vec<&str> = expected.iter().skip(offset).take(limit).map(|&(_, at)| documents[at].id.as_str()).collect();
                let (got, total) = page(&index, query, offset, limit);
                assert_eq!(total, expected.len(), "{query:?}");
                assert_eq!(got, want, "{query:?} at {offset}");
            }
            assert!(!expected.is_empty(), "{query:?} matches something");
        }
    }
}
