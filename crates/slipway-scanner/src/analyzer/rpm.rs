//! rpm: the SQLite package database (rpm 4.16 and later), read in memory. Its
//! `Packages` table holds one rpm header blob per package.

use super::{Ecosystem, FoundPackage, path_hash, rpm_legacy};
use crate::ScanError;
use rusqlite::{Connection, OpenFlags};
use std::io::{self, Read};

const SQLITE_PATHS: [&str; 2] = ["var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"];

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;
const TAG_DIRINDEXES: u32 = 1116;
const TAG_BASENAMES: u32 = 1117;
const TAG_DIRNAMES: u32 = 1118;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

pub(super) fn is_sqlite_db(path: &str) -> bool {
    SQLITE_PATHS.contains(&path)
}

/// Loads the database from the layer stream straight into SQLite's memory (nothing is
/// written to disk) and reads every package header.
pub(super) fn parse_sqlite(reader: impl Read, size: u64) -> Result<Vec<FoundPackage>, ScanError> {
    let malformed = |detail: String| ScanError::Malformed { what: "rpm database", detail };
    let size = usize::try_from(size).map_err(|err| malformed(err.to_string()))?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut db = Connection::open_in_memory_with_flags(flags).map_err(|err| malformed(err.to_string()))?;
    let rollback_journal = RollbackJournal { inner: reader, pos: 0 };
    db.deserialize_read_exact("main", rollback_journal, size, true).map_err(|err| malformed(err.to_string()))?;
    let mut statement = db.prepare("SELECT blob FROM Packages").map_err(|err| malformed(err.to_string()))?;
    let mut rows = statement.query([]).map_err(|err| malformed(err.to_string()))?;
    let mut packages = Vec::new();
    while let Some(row) = rows.next().map_err(|err| malformed(err.to_string()))? {
        let blob: Vec<u8> = row.get(0).map_err(|err| malformed(err.to_string()))?;
        if let Some(package) = package(&blob).map_err(|detail| malformed(detail.to_owned()))? {
            packages.push(package);
        }
    }
    Ok(packages)
}

/// The packages of a Berkeley DB or NDB database held in memory.
pub(super) fn parse_legacy(data: &[u8], ndb: bool) -> Result<Vec<FoundPackage>, ScanError> {
    let malformed = |detail: &str| ScanError::Malformed { what: "rpm database", detail: detail.to_owned() };
    let mut packages = Vec::new();
    let mut each = |blob: &[u8]| {
        packages.extend(package(blob)?);
        Ok(())
    };
    if ndb { rpm_legacy::ndb_blobs(data, &mut each) } else { rpm_legacy::bdb_blobs(data, &mut each) }.map_err(malformed)?;
    Ok(packages)
}

/// rpm keeps its database in WAL mode, which an in-memory SQLite database cannot open;
/// marking the copy as a rollback-journal database (header bytes 18 and 19) makes it
/// readable, and the WAL, if any, was checkpointed when the image was built.
struct RollbackJournal<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Read for RollbackJournal<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        for offset in 18..20_u64 {
            if let Some(index) = offset.checked_sub(self.pos).filter(|index| *index < read as u64) {
                buf[index as usize] = 1;
            }
        }
        self.pos += read as u64;
        Ok(read)
    }
}

/// One package from a header blob; `None` for the public keys rpm files as packages.
fn package(blob: &[u8]) -> Result<Option<FoundPackage>, &'static str> {
    let header = Header::parse(blob)?;
    let name = header.string(TAG_NAME).ok_or("a header has no name")?;
    if name == "gpg-pubkey" {
        return Ok(None);
    }
    let version = header.string(TAG_VERSION).ok_or("a header has no version")?;
    let release = header.string(TAG_RELEASE).ok_or("a header has no release")?;
    let version = match header.int32(TAG_EPOCH) {
        Some(epoch) if epoch != 0 => format!("{epoch}:{version}-{release}"),
        _ => format!("{version}-{release}"),
    };
    let mut package = FoundPackage::new(Ecosystem::Rpm, name, version);
    package.arch = header.string(TAG_ARCH).map(str::to_owned);
    // `openssl-3.0.7-24.el9.src.rpm`: name, version and release of the source package.
    let source = header.string(TAG_SOURCERPM).and_then(source_package);
    if let Some((name, version)) = source {
        package.source_name = Some(name.to_owned());
        package.source_version = Some(version);
    }
    let dirs = header.strings(TAG_DIRNAMES);
    let indexes = header.int32s(TAG_DIRINDEXES);
    for (base, index) in header.strings(TAG_BASENAMES).iter().zip(indexes) {
        let Some(dir) = usize::try_from(index).ok().and_then(|index| dirs.get(index)) else {
            continue;
        };
        let path = format!("{}{base}", dir.trim_start_matches('/'));
        package.files.push(path_hash(&path));
    }
    Ok(Some(package))
}

/// Name and version-release of a source rpm file name (`openssl-3.0.7-24.el9.src.rpm`).
fn source_package(file_name: &str) -> Option<(&str, String)> {
    let (rest, release) = file_name.strip_suffix(".src.rpm")?.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    Some((name, format!("{version}-{release}")))
}

/// An rpm header without its lead: index entries pointing into a data store.
struct Header<'b> {
    entries: Vec<IndexEntry>,
    store: &'b [u8],
}

struct IndexEntry {
    tag: u32,
    kind: u32,
    offset: usize,
    count: usize,
}

impl<'b> Header<'b> {
    fn parse(blob: &'b [u8]) -> Result<Self, &'static str> {
        let word = |at: usize| blob.get(at..at + 4).map(|b| u32::from_be_bytes(b.try_into().expect("four bytes")));
        let (Some(index_len), Some(store_len)) = (word(0), word(4)) else {
            return Err("a header is truncated");
        };
        let (index_len, store_len) = (index_len as usize, store_len as usize);
        let store_start = index_len.checked_mul(16).and_then(|len| len.checked_add(8)).ok_or("a header is too large")?;
        let store = blob.get(store_start..store_start.saturating_add(store_len)).ok_or("a header is truncated")?;
        let entries = (0..index_len)
            .map(|index| {
                let at = 8 + index * 16;
                IndexEntry {
                    tag: word(at).unwrap_or_default(),
                    kind: word(at + 4).unwrap_or_default(),
                    offset: word(at + 8).unwrap_or_default() as usize,
                    count: word(at + 12).unwrap_or_default() as usize,
                }
            })
            .collect();
        Ok(Self { entries, store })
    }

    fn entry(&self, tag: u32) -> Option<&IndexEntry> {
        self.entries.iter().find(|entry| entry.tag == tag)
    }

    fn string(&self, tag: u32) -> Option<&'b str> {
        let entry = self.entry(tag).filter(|e| matches!(e.kind, TYPE_STRING | TYPE_I18NSTRING))?;
        self.c_strings(entry.offset, 1).into_iter().next()
    }

    fn strings(&self, tag: u32) -> Vec<&'b str> {
        match self.entry(tag) {
            Some(entry) if entry.kind == TYPE_STRING_ARRAY => self.c_strings(entry.offset, entry.count),
            _ => Vec::new(),
        }
    }

    fn int32(&self, tag: u32) -> Option<u32> {
        self.int32s(tag).into_iter().next()
    }

    fn int32s(&self, tag: u32) -> Vec<u32> {
        let Some(entry) = self.entry(tag).filter(|entry| entry.kind == TYPE_INT32) else {
            return Vec::new();
        };
        let Some(bytes) = entry.count.checked_mul(4).and_then(|len| self.store.get(entry.offset..entry.offset.checked_add(len)?)) else {
            return Vec::new();
        };
        bytes.chunks_exact(4).map(|b| u32::from_be_bytes(b.try_into().expect("four bytes"))).collect()
    }

    /// `count` NUL-terminated strings from `offset`; fewer if the store ends first.
    fn c_strings(&self, offset: usize, count: usize) -> Vec<&'b str> {
        let Some(mut rest) = self.store.get(offset..) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while out.len() < count {
            let Some(end) = rest.iter().position(|&b| b == 0) else {
                break;
            };
            out.push(std::str::from_utf8(&rest[..end]).unwrap_or_default());
            rest = &rest[end + 1..];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_hostile_headers() {
        assert!(package(&[0, 0, 0]).is_err());
        // Claims a million index entries in a few bytes.
        assert!(package(&[0, 0x0f, 0x42, 0x40, 0, 0, 0, 0]).is_err());
        // One entry pointing far outside an empty store: no name.
        let mut blob = vec![0, 0, 0, 1, 0, 0, 0, 0];
        for word in [TAG_NAME, TYPE_STRING, 0x7fff_ffff, 1] {
            blob.extend(word.to_be_bytes());
        }
        assert_eq!(package(&blob).unwrap_err(), "a header has no name");
    }

    #[test]
    fn wal_mark_is_rewritten_wherever_reads_split() {
        let mut header = vec![0u8; 100];
        header[18] = 2;
        header[19] = 2;
        let mut reader = RollbackJournal { inner: io::Cursor::new(header), pos: 0 };
        let mut first = [0u8; 19];
        reader.read_exact(&mut first).unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!((first[18], rest[0]), (1, 1));
    }
}
