//! rpm's package databases: SQLite (`rpmdb.sqlite`, rpm 4.16+), Berkeley DB hash files
//! (`Packages`, RHEL 8 and older) and NDB (`Packages.db`, SUSE), and the header blobs
//! all three hold.
//!
//! First byte 0-2: the rest of the input is a database of that kind. 3 and 4: the rest
//! describes packages, which are written as rpm headers into an NDB database (3) or a
//! Berkeley DB hash file (4, either byte order, values too large for a page spilling
//! into overflow chains); the analyzer must find exactly those packages, with their
//! epochs, source packages and files.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use slipway_fuzz::{analyze_file, assert_ecosystem, packages_at};
use slipway_scanner::analyzer::{Ecosystem, path_hash};

const SQLITE: &str = "var/lib/rpm/rpmdb.sqlite";
const BDB: &str = "var/lib/rpm/Packages";
const NDB: &str = "usr/lib/sysimage/rpm/Packages.db";

#[derive(Arbitrary, Debug)]
struct Package {
    name: String,
    version: String,
    release: String,
    epoch: Option<u32>,
    arch: Option<String>,
    /// The source rpm's name, version and release.
    source: Option<(String, String, String)>,
    /// Directories, and files named by their index into them (taken modulo their count).
    dirs: Vec<String>,
    files: Vec<(String, u8)>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let path = match mode % 5 {
        0 => SQLITE,
        1 => BDB,
        2 => NDB,
        kind => {
            structured(kind == 3, rest);
            return;
        }
    };
    let report = analyze_file(path, 0o644, rest);
    if let Some(packages) = packages_at(&report, path) {
        assert_ecosystem(packages, Ecosystem::Rpm);
        assert!(packages.iter().all(|p| p.name != "gpg-pubkey"), "public keys are not packages");
    }
});

fn structured(ndb: bool, data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(big_endian) = bool::arbitrary(&mut input) else { return };
    let Ok(packages) = Vec::<Package>::arbitrary_take_rest(input) else { return };
    let packages: Vec<Package> = packages.into_iter().filter_map(clean).take(200).collect();
    let blobs: Vec<Vec<u8>> = packages.iter().map(header).collect();
    let (path, file) = if ndb { (NDB, ndb_file(&blobs)) } else { (BDB, bdb_file(&blobs, big_endian)) };
    let report = analyze_file(path, 0o644, &file);
    assert!(report.issues.is_empty(), "{:?}", report.issues);
    let found = packages_at(&report, path).unwrap_or_default();
    let expected: Vec<&Package> = packages.iter().filter(|p| p.name != "gpg-pubkey").collect();
    assert_eq!(found.len(), expected.len());
    for (found, expected) in found.iter().zip(expected) {
        assert_eq!(found.ecosystem, Ecosystem::Rpm);
        assert_eq!(found.name, expected.name);
        let version = match expected.epoch {
            Some(epoch) if epoch != 0 => format!("{epoch}:{}-{}", expected.version, expected.release),
            _ => format!("{}-{}", expected.version, expected.release),
        };
        assert_eq!(found.version, version);
        assert_eq!(found.arch, expected.arch);
        let source = expected.source.as_ref().map(|(name, version, release)| (name.clone(), format!("{version}-{release}")));
        assert_eq!(found.source_name.clone().zip(found.source_version.clone()), source);
        let files: Vec<u64> = expected
            .files
            .iter()
            .map(|(base, index)| {
                let dir = &expected.dirs[usize::from(*index) % expected.dirs.len()];
                path_hash(&format!("{}{base}", dir.trim_start_matches('/')))
            })
            .collect();
        assert_eq!(found.files, files);
    }
}

/// Strings rpm can store (no NUL); names, versions and releases as rpm builds them, so
/// that the source rpm's file name splits back into its parts.
fn clean(mut package: Package) -> Option<Package> {
    let text = |s: &str| -> String { s.chars().filter(|&c| c != '\0').collect() };
    let part = |s: &str| -> String { s.chars().filter(|&c| c.is_ascii_alphanumeric() || "._+~^".contains(c)).collect() };
    package.name = text(&package.name);
    package.version = part(&package.version);
    package.release = part(&package.release);
    package.arch = package.arch.map(|a| text(&a));
    package.source = package.source.map(|(n, v, r)| (text(&n), part(&v), part(&r))).filter(|(n, v, r)| {
        // A source name may hold dashes (python-requests); version and release may not.
        !n.is_empty() && !v.is_empty() && !r.is_empty()
    });
    package.dirs = package.dirs.iter().map(|d| text(d)).collect();
    package.files = package.files.iter().map(|(f, i)| (text(f), *i)).collect();
    if package.dirs.is_empty() {
        package.files.clear();
    }
    (!package.name.is_empty()).then_some(package)
}

/// An rpm header blob: entry count, store size, 16-byte index entries (tag, type,
/// offset, count; big-endian), then the store.
fn header(package: &Package) -> Vec<u8> {
    enum Value<'a> {
        Str(&'a str),
        Int32(Vec<u32>),
        Strings(Vec<&'a str>),
    }
    let mut tags = vec![(1000, Value::Str(&package.name)), (1001, Value::Str(&package.version)), (1002, Value::Str(&package.release))];
    if let Some(epoch) = package.epoch {
        tags.push((1003, Value::Int32(vec![epoch])));
    }
    if let Some(arch) = &package.arch {
        tags.push((1022, Value::Str(arch)));
    }
    let source = package.source.as_ref().map(|(n, v, r)| format!("{n}-{v}-{r}.src.rpm"));
    if let Some(source) = &source {
        tags.push((1044, Value::Str(source)));
    }
    if !package.files.is_empty() {
        let dirs = package.dirs.len();
        tags.push((1116, Value::Int32(package.files.iter().map(|(_, i)| u32::from(*i) % dirs as u32).collect())));
        tags.push((1117, Value::Strings(package.files.iter().map(|(f, _)| f.as_str()).collect())));
        tags.push((1118, Value::Strings(package.dirs.iter().map(String::as_str).collect())));
    }
    let mut index = Vec::new();
    let mut store: Vec<u8> = Vec::new();
    for (tag, value) in &tags {
        let (kind, count): (u32, usize) = match value {
            Value::Str(_) => (6, 1),
            Value::Int32(values) => {
                store.resize(store.len().next_multiple_of(4), 0);
                (4, values.len())
            }
            Value::Strings(values) => (8, values.len()),
        };
        for word in [*tag, kind, store.len() as u32, count as u32] {
            index.extend(word.to_be_bytes());
        }
        match value {
            Value::Str(text) => store.extend(text.as_bytes().iter().chain([&0])),
            Value::Int32(values) => values.iter().for_each(|v| store.extend(v.to_be_bytes())),
            Value::Strings(texts) => texts.iter().for_each(|text| store.extend(text.as_bytes().iter().chain([&0]))),
        }
    }
    let mut blob = Vec::new();
    blob.extend((tags.len() as u32).to_be_bytes());
    blob.extend((store.len() as u32).to_be_bytes());
    blob.extend(index);
    blob.extend(store);
    blob
}

/// An NDB database: a 32-byte header, one 4096-byte page of 16-byte slots, then one
/// block per package (a 16-byte blob header and the blob, padded to 16 bytes).
fn ndb_file(blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut file = Vec::new();
    file.extend(b"RpmP");
    file.extend(0u32.to_le_bytes());
    file.extend(7u32.to_le_bytes());
    file.extend(1u32.to_le_bytes());
    file.resize(32, 0);
    let mut blocks = Vec::new();
    let mut slots = Vec::new();
    for (index, blob) in blobs.iter().enumerate() {
        slots.push((index + 1, (4096 + blocks.len()) / 16));
        blocks.extend(b"BlbS");
        blocks.extend((index as u32 + 1).to_le_bytes());
        blocks.extend(0u32.to_le_bytes());
        blocks.extend((blob.len() as u32).to_le_bytes());
        blocks.extend(blob);
        blocks.resize(blocks.len().next_multiple_of(16), 0);
    }
    for slot in 0..(4096 - 32) / 16 {
        let (package, offset) = slots.get(slot).copied().unwrap_or_default();
        file.extend(b"Slot");
        for word in [package, offset, 1] {
            file.extend((word as u32).to_le_bytes());
        }
    }
    file.extend(blocks);
    file
}

/// A Berkeley DB hash file of 4096-byte pages: the metadata page, hash pages holding
/// key/data pairs stacked down from the page end, and overflow chains for values that do
/// not fit on a page.
fn bdb_file(blobs: &[Vec<u8>], big_endian: bool) -> Vec<u8> {
    const PAGE: usize = 4096;
    const HEADER: usize = 26;
    let u16_bytes = |value: usize| if big_endian { (value as u16).to_be_bytes() } else { (value as u16).to_le_bytes() };
    let u32_bytes = |value: usize| if big_endian { (value as u32).to_be_bytes() } else { (value as u32).to_le_bytes() };
    let mut pages: Vec<Vec<u8>> = vec![vec![0; PAGE]];
    // Items of the hash pages, as (key, value) where the value is inline or overflow.
    let mut items: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (index, blob) in blobs.iter().enumerate() {
        let key = [&[1u8][..], &(index as u32 + 1).to_le_bytes()].concat();
        if blob.len() + 1 <= 1024 {
            items.push((key, [&[1u8][..], blob].concat()));
            continue;
        }
        // The overflow chain, written first so that its page numbers are known.
        let first = pages.len();
        let chunks: Vec<&[u8]> = blob.chunks(PAGE - HEADER).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut page = vec![0u8; PAGE];
            let next = if i + 1 < chunks.len() { pages.len() + 1 } else { 0 };
            page[16..20].copy_from_slice(&u32_bytes(next));
            page[22..24].copy_from_slice(&u16_bytes(chunk.len()));
            page[25] = 7;
            page[HEADER..HEADER + chunk.len()].copy_from_slice(chunk);
            pages.push(page);
        }
        let mut offpage = vec![3u8, 0, 0, 0];
        offpage.extend(u32_bytes(first));
        offpage.extend(u32_bytes(blob.len()));
        items.push((key, offpage));
    }
    // Hash pages, filled one after the other.
    let mut page = vec![0u8; PAGE];
    let mut count = 0;
    let mut end = PAGE;
    let flush = |page: &mut Vec<u8>, count: &mut usize, end: &mut usize, pages: &mut Vec<Vec<u8>>| {
        if *count > 0 {
            page[20..22].copy_from_slice(&u16_bytes(*count));
            page[25] = 13;
            pages.push(std::mem::replace(page, vec![0u8; PAGE]));
        }
        *count = 0;
        *end = PAGE;
    };
    for (key, value) in &items {
        let index_end = HEADER + (count + 2) * 2;
        if end.saturating_sub(key.len() + value.len()) < index_end {
            flush(&mut page, &mut count, &mut end, &mut pages);
        }
        for item in [key, value] {
            let start = end - item.len();
            page[start..end].copy_from_slice(item);
            page[HEADER + count * 2..HEADER + count * 2 + 2].copy_from_slice(&u16_bytes(start));
            end = start;
            count += 1;
        }
    }
    flush(&mut page, &mut count, &mut end, &mut pages);
    let mut meta = vec![0u8; PAGE];
    meta[12..16].copy_from_slice(&u32_bytes(0x0006_1561));
    meta[20..24].copy_from_slice(&u32_bytes(PAGE));
    meta[25] = 8;
    meta[32..36].copy_from_slice(&u32_bytes(pages.len() - 1));
    pages[0] = meta;
    pages.concat()
}
