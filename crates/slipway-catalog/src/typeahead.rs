//! Typeahead from memory. Each replica holds the words of every published listing's name
//! and tags as small integers (and, in the search index, what a suggestion shows of it),
//! so suggesting for what is being typed walks a few integer lists and asks nothing of
//! the database. Ranking every
//! listing that matches a two-letter prefix instead, as the databases' full-text search
//! did, cost about 4 ms of CPU per keystroke over 100,000 listings.
//! What the memory holds is what Elasticsearch's completion suggester keeps for the same
//! reason: the words and the suggestion itself.
//!
//! A suggestion is a listing holding every typed word (the last one as a prefix, as it
//! may still be being typed) in its name or tags. Those holding them all in the name come
//! first, then the others; each group most popular first (featured, then pulls, as
//! browsing orders them).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ops::Range;

use crate::index::{Bits, Rank, gallop};
use crate::text::words;

/// A word as typed: the indexed words it stands for (itself, or its spelling
/// corrections), matched whole, or as prefixes while it is still being typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypedWord {
    pub alternatives: Vec<String>,
    pub prefix: bool,
}

/// A word is known by its place in the sorted vocabulary, so the words sharing a prefix
/// are a range of ids.
type WordId = u32;

pub struct TypeaheadIndex {
    /// Each listing's distinct words: those of its name, then those of its tags only.
    /// Listing `r` holds `listing_words[listing_start[r]..listing_start[r + 1]]`, the
    /// first `name_len[r]` of them from its name.
    listing_words: Vec<WordId>,
    listing_start: Vec<u32>,
    name_len: Vec<u8>,
    /// The vocabulary of names and tags, sorted.
    words: Vec<Box<str>>,
    /// The listings holding word `w`, by rank: `postings[posting_start[w]..posting_start[w + 1]]`.
    postings: Vec<Rank>,
    posting_start: Vec<u32>,
    /// The words that many listings hold, also as one bit per listing: intersecting two
    /// of them is a few thousand ANDs instead of a walk through thousands of ranks.
    dense: HashMap<WordId, Bits>,
}

/// What one listing contributes to the index.
pub struct IndexedListing<'a> {
    pub name: &'a str,
    /// Its search tags and category, as search indexes them.
    pub tags: &'a str,
}

impl TypeaheadIndex {
    /// Indexes `listings`, given most popular first (their ranks are the search index's).
    pub fn build<'a>(listings: impl IntoIterator<Item = IndexedListing<'a>>) -> TypeaheadIndex {
        // Words are numbered as met, then renumbered in sorted order.
        let mut numbers: HashMap<String, WordId> = HashMap::new();
        let mut count = 0;
        let mut listing_words = Vec::new();
        let mut listing_start = vec![0];
        let mut name_len = Vec::new();
        for listing in listings {
            let start = listing_words.len();
            for (field, text) in [(0, listing.name), (1, listing.tags)] {
                for word in words(text) {
                    let next = numbers.len() as WordId;
                    let id = *numbers.entry(word).or_insert(next);
                    if !listing_words[start..].contains(&id) {
                        listing_words.push(id);
                    }
                }
                if field == 0 {
                    // Names are short; a longer one is cut to the first 255 words.
                    let len = (listing_words.len() - start).min(u8::MAX as usize);
                    listing_words.truncate(start + len);
                    name_len.push(len as u8);
                }
            }
            count += 1;
            listing_start.push(listing_words.len() as u32);
        }
        let mut words: Vec<(String, WordId)> = numbers.into_iter().collect();
        words.sort_unstable();
        let mut renumber = vec![0; words.len()];
        for (sorted, (_, met)) in words.iter().enumerate() {
            renumber[*met as usize] = sorted as WordId;
        }
        for w in &mut listing_words {
            *w = renumber[*w as usize];
        }
        // Postings by counting: listings are visited by rank, so each list comes out sorted.
        let mut posting_start = vec![0u32; words.len() + 1];
        for &w in &listing_words {
            posting_start[w as usize + 1] += 1;
        }
        for w in 0..words.len() {
            posting_start[w + 1] += posting_start[w];
        }
        let mut fill = posting_start.clone();
        let mut postings = vec![0; listing_words.len()];
        for rank in 0..count {
            for &w in &listing_words[listing_start[rank] as usize..listing_start[rank + 1] as usize] {
                postings[fill[w as usize] as usize] = rank as Rank;
                fill[w as usize] += 1;
            }
        }
        let dense = (0..words.len())
            .filter_map(|w| {
                let list = &postings[posting_start[w] as usize..posting_start[w + 1] as usize];
                Bits::worth_keeping(count, list).then(|| (w as WordId, Bits::of(count, list)))
            })
            .collect();
        TypeaheadIndex {
            listing_words,
            listing_start,
            name_len,
            words: words.into_iter().map(|(w, _)| w.into_boxed_str()).collect(),
            postings,
            posting_start,
            dense,
        }
    }

    /// The ranks of up to `limit` listings to suggest for `typed`, best first.
    pub fn suggest(&self, typed: &[TypedWord], limit: usize) -> Vec<Rank> {
        // Which words a listing holds is a bit set (the caller sends at most 12).
        let typed = &typed[..typed.len().min(32)];
        let wanted: Vec<Vec<Range<WordId>>> = typed.iter().map(|w| self.word_ranges(w)).collect();
        if wanted.is_empty() || limit == 0 || wanted.iter().any(Vec::is_empty) {
            return Vec::new();
        }
        // Candidates: the listings holding every word that stands for one indexed word,
        // by intersecting those words' lists. Without such a word (a prefix typed alone,
        // or a misspelling with several corrections), the lists of the cheapest word,
        // merged in rank order and read only as far as needed.
        let single: Vec<WordId> = wanted.iter().filter(|r| r.len() == 1 && r[0].len() == 1).map(|r| r[0].start).collect();
        let candidates: Box<dyn Iterator<Item = Rank> + '_> = if single.is_empty() {
            let cheapest = wanted.iter().min_by_key(|ranges| self.postings_len(ranges)).expect("not empty");
            Box::new(self.merged_postings(cheapest))
        } else {
            self.holding_all(&single)
        };
        let everything = u32::MAX >> (32 - wanted.len());
        let (mut in_name, mut elsewhere) = (Vec::new(), Vec::new());
        for rank in candidates {
            let (held, named) = self.words_held(rank, &wanted);
            if held != everything {
                continue;
            }
            if named == everything {
                in_name.push(rank);
                if in_name.len() == limit {
                    break;
                }
            } else if elsewhere.len() < limit {
                elsewhere.push(rank);
            }
        }
        in_name.extend(elsewhere);
        in_name.truncate(limit);
        in_name
    }

    /// The listings holding every one of `words`, by rank: the bits of the dense words
    /// ANDed together, or the lists of the others intersected and checked against those
    /// bits.
    fn holding_all(&self, words: &[WordId]) -> Box<dyn Iterator<Item = Rank> + '_> {
        let (dense, sparse): (Vec<&Bits>, Vec<WordId>) = words.iter().fold((Vec::new(), Vec::new()), |(mut dense, mut sparse), w| {
            match self.dense.get(w) {
                Some(bits) => dense.push(bits),
                None => sparse.push(*w),
            }
            (dense, sparse)
        });
        if sparse.is_empty() {
            let mut all = dense[0].clone();
            for bits in &dense[1..] {
                all.and(bits);
            }
            return Box::new(all.into_ranks());
        }
        let lists = sparse.iter().map(|&w| self.postings_of(w)).collect();
        Box::new(intersection(lists).filter(move |&rank| dense.iter().all(|bits| bits.contains(rank))))
    }

    /// Which of the `wanted` words listing `rank` holds, anywhere and in its name, as bit
    /// sets (bit `i` for `wanted[i]`), from one pass over its few words.
    fn words_held(&self, rank: Rank, wanted: &[Vec<Range<WordId>>]) -> (u32, u32) {
        let r = rank as usize;
        let words = &self.listing_words[self.listing_start[r] as usize..self.listing_start[r + 1] as usize];
        let name_len = usize::from(self.name_len[r]);
        let (mut held, mut named) = (0, 0);
        for (at, word) in words.iter().enumerate() {
            for (i, ranges) in wanted.iter().enumerate() {
                if ranges.iter().any(|range| range.contains(word)) {
                    held |= 1 << i;
                    if at < name_len {
                        named |= 1 << i;
                    }
                }
            }
        }
        (held, named)
    }

    /// The vocabulary ids a typed word stands for: one per alternative the index holds,
    /// or every word starting with it.
    fn word_ranges(&self, typed: &TypedWord) -> Vec<Range<WordId>> {
        let mut ranges: Vec<Range<WordId>> = typed
            .alternatives
            .iter()
            .filter_map(|a| {
                let start = self.words.partition_point(|w| **w < **a);
                let end = if typed.prefix {
                    start + self.words[start..].partition_point(|w| w.starts_with(a.as_str()))
                } else {
                    start + usize::from(self.words.get(start).is_some_and(|w| **w == **a))
                };
                (start < end).then_some(start as WordId..end as WordId)
            })
            .collect();
        ranges.sort_unstable_by_key(|r| r.start);
        ranges
    }

    fn postings_len(&self, ranges: &[Range<WordId>]) -> u32 {
        ranges.iter().map(|r| self.posting_start[r.end as usize] - self.posting_start[r.start as usize]).sum()
    }

    fn postings_of(&self, word: WordId) -> &[Rank] {
        &self.postings[self.posting_start[word as usize] as usize..self.posting_start[word as usize + 1] as usize]
    }

    /// Every listing holding one of the words in `ranges`, once each, by rank. A merge
    /// that is stopped early costs little even when a short prefix covers thousands of
    /// words.
    fn merged_postings<'a>(&'a self, ranges: &[Range<WordId>]) -> impl Iterator<Item = Rank> + 'a {
        let lists: Vec<&[Rank]> = ranges.iter().flat_map(|r| r.clone()).map(|w| self.postings_of(w)).filter(|l| !l.is_empty()).collect();
        let mut heads: BinaryHeap<Reverse<(Rank, usize, usize)>> = lists.iter().enumerate().map(|(i, l)| Reverse((l[0], i, 0))).collect();
        let mut last = None;
        std::iter::from_fn(move || {
            while let Some(Reverse((rank, list, at))) = heads.pop() {
                if let Some(&next) = lists[list].get(at + 1) {
                    heads.push(Reverse((next, list, at + 1)));
                }
                if last != Some(rank) {
                    last = Some(rank);
                    return Some(rank);
                }
            }
            None
        })
    }
}

/// The ranks in every one of `lists` (each sorted), in order, found as they are asked
/// for (a suggestion often needs only the first few). The shortest list is walked; the
/// others are searched forwards from where their last search ended, in growing steps, so
/// lists of similar length cost about one comparison per element.
fn intersection<'a>(mut lists: Vec<&'a [Rank]>) -> impl Iterator<Item = Rank> + 'a {
    lists.sort_unstable_by_key(|l| l.len());
    let mut others = lists.split_off(1);
    lists[0].iter().copied().filter(move |&rank| others.iter_mut().all(|rest| seek(rest, rank)))
}

/// Moves `rest` to its first rank not below `rank`; whether that is `rank`.
fn seek(rest: &mut &[Rank], rank: Rank) -> bool {
    *rest = &rest[gallop(rest, rank)..];
    rest.first() == Some(&rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index of listings known by their paths, given as (path, name, tags).
    struct Indexed {
        index: TypeaheadIndex,
        paths: Vec<String>,
    }

    fn indexed(listings: &[(String, String, String)]) -> Indexed {
        let index = TypeaheadIndex::build(listings.iter().map(|(_, name, tags)| IndexedListing { name, tags }));
        Indexed { index, paths: listings.iter().map(|(path, _, _)| path.clone()).collect() }
    }

    fn index() -> Indexed {
        // Most popular first.
        let listings = [
            ("acme/gateway", "Acme API Gateway", "api proxy Networking"),
            ("nimbus/db", "Nimbus DB", "database sql Databases"),
            ("north/gateway", "Northwind Gateway", "proxy Networking"),
            ("nimbus/cache", "Nimbus Cache", "cache redis database Databases"),
            ("iron/guard", "Ironclad Runtime Guard", "ebpf security Security"),
            ("tide/proxy", "Tidepool Proxy", "gateway Networking"),
        ];
        indexed(&listings.map(|(path, name, tags)| (path.into(), name.into(), tags.into())))
    }

    /// The paths of what `index` suggests.
    fn suggest<'a>(index: &'a Indexed, typed: &[TypedWord], limit: usize) -> Vec<&'a str> {
        index.index.suggest(typed, limit).into_iter().map(|rank| index.paths[rank as usize].as_str()).collect()
    }

    fn typed(words: &[&str]) -> Vec<TypedWord> {
        let last = words.len() - 1;
        words.iter().enumerate().map(|(i, w)| TypedWord { alternatives: vec![(*w).to_owned()], prefix: i == last }).collect()
    }

    #[test]
    fn the_word_being_typed_matches_as_a_prefix_names_first_then_by_popularity() {
        let index = index();
        // Both names holding "gateway" come first, most popular first; the tag match last.
        assert_eq!(suggest(&index, &typed(&["gatew"]), 8), ["acme/gateway", "north/gateway", "tide/proxy"]);
        assert_eq!(suggest(&index, &typed(&["nimb"]), 8), ["nimbus/db", "nimbus/cache"]);
        assert_eq!(suggest(&index, &typed(&["eb"]), 8), ["iron/guard"], "a tag");
        assert_eq!(suggest(&index, &typed(&["netw"]), 8), ["acme/gateway", "north/gateway", "tide/proxy"], "a category");
        assert!(suggest(&index, &typed(&["zz"]), 8).is_empty());
    }

    #[test]
    fn earlier_words_match_whole_and_every_word_must_match() {
        let index = index();
        assert_eq!(suggest(&index, &typed(&["nimbus", "ca"]), 8), ["nimbus/cache"]);
        assert_eq!(suggest(&index, &typed(&["database", "nim"]), 8), ["nimbus/db", "nimbus/cache"]);
        // "nimbu" is not a word: only the last word is a prefix.
        assert!(suggest(&index, &typed(&["nimbu", "db"]), 8).is_empty());
        // Words of the name and of the tags together.
        assert_eq!(suggest(&index, &typed(&["proxy", "gate"]), 8), ["acme/gateway", "north/gateway", "tide/proxy"]);
        // A name match ranks above more popular listings holding the word in their tags.
        assert_eq!(suggest(&index, &typed(&["prox"]), 8), ["tide/proxy", "acme/gateway", "north/gateway"]);
    }

    #[test]
    fn corrections_are_alternatives_and_limits_cut_the_list() {
        let index = index();
        let corrected = [TypedWord { alternatives: vec!["redis".into(), "ebpf".into()], prefix: false }];
        assert_eq!(suggest(&index, &corrected, 8), ["nimbus/cache", "iron/guard"]);
        assert_eq!(suggest(&index, &typed(&["gatew"]), 2), ["acme/gateway", "north/gateway"]);
        assert!(suggest(&index, &typed(&["gatew"]), 0).is_empty());
        assert!(suggest(&index, &[], 8).is_empty());
    }

    #[test]
    fn a_large_catalogue_gives_the_same_answers_as_a_scan() {
        // 5,000 listings over a small vocabulary: every list is long, as in the benchmark.
        let vocabulary = ["data", "database", "datadog", "gate", "gateway", "graph", "metric", "mesh", "proxy", "queue"];
        let names: Vec<(String, String, String)> = (0..5_000)
            .map(|i| {
                let name = format!("{} {}", vocabulary[i % 10], vocabulary[(i / 10) % 10]);
                // "zeta" is held by one listing in 50: a list, where the others are also bits.
                let tags = format!("{} {}", vocabulary[(i * 7 + 3) % 10], if i % 50 == 0 { "zeta" } else { "" });
                (format!("p/{i}"), name, tags)
            })
            .collect();
        let index = indexed(&names);
        let zeta = index.index.words.binary_search_by(|w| (**w).cmp("zeta")).unwrap() as WordId;
        assert!(!index.index.dense.contains_key(&zeta) && index.index.dense.len() == 10, "the test covers both kinds");
        let queries = [
            vec!["dat"],
            vec!["gateway", "me"],
            vec!["proxy", "q"],
            vec!["queue", "queue"],
            vec!["d"],
            vec!["mesh", "proxy", "g"],
            vec!["data", "metric"],
            vec!["zeta", "gateway", "m"],
            vec!["gateway", "zeta"],
            vec!["zeta", "z"],
        ];
        for query in queries {
            let got = suggest(&index, &typed(&query), 10);
            let (mut in_name, mut elsewhere) = (Vec::new(), Vec::new());
            for (id, name, tags) in &names {
                let holds =
                    |text: &str, word: &str, prefix: bool| words(text).any(|w| if prefix { w.starts_with(word) } else { w == word });
                let last = query.len() - 1;
                let everywhere = query.iter().enumerate().all(|(i, q)| holds(name, q, i == last) || holds(tags, q, i == last));
                if everywhere && query.iter().enumerate().all(|(i, q)| holds(name, q, i == last)) {
                    in_name.push(id.as_str());
                } else if everywhere {
                    elsewhere.push(id.as_str());
                }
            }
            in_name.extend(elsewhere);
            in_name.truncate(10);
            assert_eq!(got, in_name, "{query:?}");
        }
    }

    #[test]
    fn intersections_of_sorted_lists() {
        let evens: Vec<Rank> = (0..1_000).map(|i| i * 2).collect();
        let threes: Vec<Rank> = (0..700).map(|i| i * 3).collect();
        let sparse: Vec<Rank> = vec![0, 6, 7, 600, 1_200, 1_998, 5_000];
        let by_scan = |lists: &[&[Rank]]| (0..6_000).filter(|r| lists.iter().all(|l| l.contains(r))).collect::<Vec<Rank>>();
        for lists in
            [vec![&evens[..], &threes[..]], vec![&threes[..], &sparse[..], &evens[..]], vec![&sparse[..]], vec![&evens[..], &[][..]]]
        {
            assert_eq!(
                intersection(lists.clone()).collect::<Vec<_>>(),
                by_scan(&lists),
                "{:?}",
                lists.iter().map(|l| l.len()).collect::<Vec<_>>()
            );
        }
    }
}
