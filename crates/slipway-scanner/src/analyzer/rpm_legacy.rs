//! The rpm databases from before SQLite: Berkeley DB hash files (`Packages`, RHEL 8 and
//! older, Amazon Linux 2) and rpm's own NDB format (`Packages.db`, SUSE). Both are read
//! from memory; each yields the same header blobs as the SQLite database.

const BDB_PATHS: [&str; 2] = ["var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages"];
const NDB_PATHS: [&str; 2] = ["var/lib/rpm/Packages.db", "usr/lib/sysimage/rpm/Packages.db"];

pub(super) fn is_bdb(path: &str) -> bool {
    BDB_PATHS.contains(&path)
}

pub(super) fn is_ndb(path: &str) -> bool {
    NDB_PATHS.contains(&path)
}

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const PAGE_HASH_UNSORTED: u8 = 2;
const PAGE_OVERFLOW: u8 = 7;
const PAGE_HASH: u8 = 13;
const ITEM_KEYDATA: u8 = 1;
const ITEM_OFFPAGE: u8 = 3;

/// Hands `each` blob its caller reads, one at a time, so that only one is held.
pub(super) type Each<'e> = dyn FnMut(&[u8]) -> Result<(), &'static str> + 'e;

/// The values of a Berkeley DB hash database: the data half of every key/data pair.
pub(super) fn bdb_blobs(data: &[u8], each: &mut Each<'_>) -> Result<(), &'static str> {
    let meta = data.get(..64).ok_or("not a Berkeley DB file")?;
    // The database is in its creator's byte order; the magic number tells which.
    let big_endian = match meta[12..16].try_into().expect("four bytes") {
        magic if u32::from_le_bytes(magic) == HASH_MAGIC => false,
        magic if u32::from_be_bytes(magic) == HASH_MAGIC => true,
        _ => return Err("not a Berkeley DB hash database"),
    };
    let reader = Endian { big_endian };
    let page_size = reader.u32(meta, 20) as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err("bad Berkeley DB page size");
    }
    let last_page = reader.u32(meta, 32) as usize;
    if last_page >= data.len() / page_size {
        return Err("Berkeley DB file is truncated");
    }
    // An overflow page belongs to one value: a page claimed twice is a loop or a trick
    // to make a small file expand into many large values.
    let mut claimed = vec![false; last_page + 1];
    let page_at = |number: usize| data.get(number.checked_mul(page_size)?..).and_then(|rest| rest.get(..page_size));
    for number in 0..=last_page {
        let Some(page) = page_at(number) else {
            return Err("Berkeley DB file is truncated");
        };
        if !matches!(page[25], PAGE_HASH | PAGE_HASH_UNSORTED) {
            continue;
        }
        let entries = usize::from(reader.u16(page, 20));
        let offset_of = |index: usize| {
            page.get(PAGE_HEADER + index * 2..PAGE_HEADER + index * 2 + 2).map(|_| usize::from(reader.u16(page, PAGE_HEADER + index * 2)))
        };
        // Items alternate key, data; each ends where the item before it starts.
        for index in (1..entries).step_by(2) {
            let (Some(start), Some(end)) = (offset_of(index), offset_of(index - 1)) else {
                return Err("Berkeley DB page index is out of bounds");
            };
            let item = page.get(start..end.max(start)).ok_or("Berkeley DB item is out of bounds")?;
            match item.first() {
                Some(&ITEM_KEYDATA) => each(&item[1..])?,
                Some(&ITEM_OFFPAGE) if item.len() >= 12 => {
                    let first = reader.u32(item, 4) as usize;
                    let total = reader.u32(item, 8) as usize;
                    each(&overflow_chain(&page_at, reader, first, total, &mut claimed)?)?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Concatenates the overflow pages that hold one large value.
fn overflow_chain<'d>(
    page_at: &impl Fn(usize) -> Option<&'d [u8]>,
    reader: Endian,
    first: usize,
    total: usize,
    claimed: &mut [bool],
) -> Result<Vec<u8>, &'static str> {
    let mut value = Vec::with_capacity(total.min(1 << 24));
    let mut number = first;
    while number != 0 && value.len() < total {
        match claimed.get_mut(number) {
            Some(page) if !*page => *page = true,
            _ => return Err("Berkeley DB overflow chain is broken"),
        }
        let data = page_at(number).ok_or("Berkeley DB file is truncated")?;
        if data[25] != PAGE_OVERFLOW {
            return Err("Berkeley DB overflow chain leads to another page type");
        }
        let next = reader.u32(data, 16) as usize;
        // The last page says how many of its bytes are used.
        let used = if next == 0 { usize::from(reader.u16(data, 22)) } else { data.len() - PAGE_HEADER };
        let chunk = data.get(PAGE_HEADER..PAGE_HEADER + used).ok_or("Berkeley DB overflow page is out of bounds")?;
        value.extend_from_slice(chunk);
        number = next;
    }
    value.truncate(total);
    Ok(value)
}

#[derive(Clone, Copy)]
struct Endian {
    big_endian: bool,
}

impl Endian {
    fn u16(self, data: &[u8], at: usize) -> u16 {
        let bytes = [data[at], data[at + 1]];
        if self.big_endian { u16::from_be_bytes(bytes) } else { u16::from_le_bytes(bytes) }
    }

    fn u32(self, data: &[u8], at: usize) -> u32 {
        let bytes: [u8; 4] = data[at..at + 4].try_into().expect("four bytes");
        if self.big_endian { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) }
    }
}

const NDB_MAGIC: &[u8; 4] = b"RpmP";
const NDB_SLOT_MAGIC: &[u8; 4] = b"Slot";
const NDB_BLOB_MAGIC: &[u8; 4] = b"BlbS";
const NDB_HEADER: usize = 32;
const NDB_SLOT_PAGE: usize = 4096;
const NDB_SLOT: usize = 16;
const NDB_BLOCK: usize = 16;
/// rpm itself never grows the slot area this far; a larger count is corrupt.
const NDB_MAX_SLOT_PAGES: usize = 2048;

/// The package blobs of an NDB database: slots after the header point to blocks, each a
/// 16-byte blob header followed by the blob. All fields are little-endian.
pub(super) fn ndb_blobs(data: &[u8], each: &mut Each<'_>) -> Result<(), &'static str> {
    let header = data.get(..NDB_HEADER).ok_or("not an rpm NDB database")?;
    let word = |bytes: &[u8], at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes")) as usize;
    if &header[..4] != NDB_MAGIC || word(header, 4) != 0 {
        return Err("not an rpm NDB database");
    }
    let slot_pages = word(header, 12);
    if slot_pages == 0 || slot_pages > NDB_MAX_SLOT_PAGES {
        return Err("bad NDB slot page count");
    }
    let slots = data.get(NDB_HEADER..slot_pages * NDB_SLOT_PAGE).ok_or("NDB database is truncated")?;
    // Blobs do not overlap, so together they are no larger than the file.
    let mut left = data.len();
    for slot in slots.chunks_exact(NDB_SLOT) {
        if &slot[..4] != NDB_SLOT_MAGIC {
            return Err("bad NDB slot");
        }
        let package = word(slot, 4);
        if package == 0 {
            continue;
        }
        let start = word(slot, 8).checked_mul(NDB_BLOCK).ok_or("bad NDB block offset")?;
        let blob_header = data.get(start..start + 16).ok_or("NDB block is out of bounds")?;
        if &blob_header[..4] != NDB_BLOB_MAGIC || word(blob_header, 4) != package {
            return Err("bad NDB blob header");
        }
        let len = word(blob_header, 12);
        let blob = data.get(start + 16..).and_then(|rest| rest.get(..len)).ok_or("NDB blob is out of bounds")?;
        left = left.checked_sub(len).ok_or("NDB blobs overlap")?;
        each(blob)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused() {
        let mut ignore = |_: &[u8]| Ok(());
        assert!(bdb_blobs(b"short", &mut ignore).is_err());
        assert!(bdb_blobs(&[0u8; 4096], &mut ignore).is_err());
        assert!(ndb_blobs(&[0u8; 64], &mut ignore).is_err());
        let mut ndb = b"RpmP".to_vec();
        ndb.extend([0u8; 8]);
        ndb.extend(u32::MAX.to_le_bytes());
        ndb.resize(4096, 0);
        assert_eq!(ndb_blobs(&ndb, &mut ignore).unwrap_err(), "bad NDB slot page count");
    }

    #[test]
    fn overflow_loops_are_caught() {
        let page_size = 512;
        let mut data = vec![0u8; page_size * 2];
        // Page 1 is an overflow page pointing at itself.
        data[page_size + 25] = PAGE_OVERFLOW;
        data[page_size + 16] = 1;
        let page = |number: usize| data.get(number * page_size..(number + 1) * page_size);
        let reader = Endian { big_endian: false };
        assert!(overflow_chain(&page, reader, 1, 100_000, &mut [false; 2]).is_err());
    }

    #[test]
    fn an_overflow_page_serves_one_value_only() {
        let page_size = 512;
        let mut data = vec![0u8; page_size * 2];
        data[page_size + 25] = PAGE_OVERFLOW;
        data[page_size + 22] = 10;
        let page = |number: usize| data.get(number * page_size..(number + 1) * page_size);
        let reader = Endian { big_endian: false };
        let mut claimed = [false; 2];
        assert_eq!(overflow_chain(&page, reader, 1, 10, &mut claimed).unwrap().len(), 10);
        assert!(overflow_chain(&page, reader, 1, 10, &mut claimed).is_err());
    }
}
