//! A streaming tar reader whose memory use the archive cannot choose.
//!
//! The `tar` crate reads GNU long-name and long-link entries and PAX extension headers
//! whole into memory, bounded only by the stream: half a megabyte of gzip can name a
//! file with gigabytes of bytes. This reader understands the same formats that image
//! layers and `docker save` archives use (ustar, GNU long names and links, PAX `path`,
//! `linkpath` and `size`, GNU base-256 sizes) but holds at most `max_header_bytes` of
//! any one metadata entry: a larger one is streamed past unread, and the entry it
//! describes comes back with [`Entry::dropped`] saying why its name is unknown.
//!
//! GNU sparse entries are walked (their extension blocks are read one at a time and
//! forgotten) but their data is not expanded: a sparse file can claim terabytes of
//! holes, and no tool that builds images writes them.

use std::io::{self, BufRead, BufReader, Read};

use tar::{EntryType, Header};

const BLOCK: u64 = 512;

/// PAX keys longer than this are not keys this reader looks for.
const MAX_PAX_KEY: usize = 64;
/// A PAX `size` value: a decimal number.
const MAX_PAX_SIZE_VALUE: usize = 32;

/// What the tar is read from: a stream, or a file that can seek past data.
pub(crate) trait Source: Read {
    /// Passes over `n` bytes.
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let skipped = io::copy(&mut self.take(n), &mut io::sink())?;
        if skipped < n {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive ends inside an entry"));
        }
        Ok(())
    }
}

/// One member of the archive, with its metadata entries applied.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The path as stored; `None` when its long name or PAX header was over the limit.
    pub path: Option<Vec<u8>>,
    /// The link target of links; `None` for other entries, or when it was over the limit.
    pub link: Option<Vec<u8>>,
    pub kind: EntryType,
    pub mode: Option<u32>,
    /// Bytes of data the archive holds for this entry (a sparse file's stored bytes).
    pub size: u64,
    /// Where the data starts, from the start of the archive.
    pub offset: u64,
    /// Why some of the entry's metadata was not read, when it was not.
    pub dropped: Option<String>,
}

/// A metadata entry as kept: its bytes, or the fact that it was too large to keep.
enum Meta {
    Kept(Vec<u8>),
    Dropped(u64),
}

/// What a PAX header says about the next entry.
#[derive(Default)]
struct Pax {
    path: Option<Meta>,
    linkpath: Option<Meta>,
    size: Option<u64>,
}

/// Metadata entries seen since the last real entry.
#[derive(Default)]
struct Pending {
    long_name: Option<Meta>,
    long_link: Option<Meta>,
    pax: Option<Pax>,
    /// The size of an over-limit PAX header, which was only searched for `size`.
    pax_dropped: Option<u64>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && self.long_link.is_none() && self.pax.is_none()
    }
}

pub(crate) struct TarStream<R> {
    inner: R,
    /// Bytes read from `inner` so far.
    pos: u64,
    /// Where the next header starts.
    next: u64,
    /// Where the current entry's data ends.
    data_end: u64,
    max_header_bytes: u64,
    done: bool,
}

impl<R: Source> TarStream<R> {
    pub(crate) fn new(inner: R, max_header_bytes: u64) -> Self {
        Self { inner, pos: 0, next: 0, data_end: 0, max_header_bytes, done: false }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// The next real entry (metadata entries are applied to it, not returned); `None` at
    /// the end of the archive. Its data is read from `self` until the next call.
    pub(crate) fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        let mut pending = Pending::default();
        loop {
            let Some(block) = self.next_header()? else {
                self.done = true;
                if !pending.is_empty() {
                    return Err(invalid("members found describing a future member but no future member found"));
                }
                return Ok(None);
            };
            let header = Header::from_byte_slice(&block);
            let kind = header.entry_type();
            let extension =
                kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions() || kind.is_pax_global_extensions();
            let mut size = header.entry_size()?;
            // A PAX size overrides the header's for the entry it describes, as the `tar`
            // crate does: parsers that disagree here read different files.
            if !extension && let Some(pax_size) = pending.pax.as_ref().and_then(|p| p.size) {
                size = pax_size;
            }
            let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
            if kind.is_gnu_sparse() {
                let extended = header.as_gnu().is_some_and(|gnu| gnu.is_extended());
                if extended {
                    self.skip_sparse_extensions()?;
                }
            }
            self.start_data(size)?;
            if recognized && kind.is_gnu_longname() {
                if pending.long_name.is_some() {
                    return Err(invalid("two long name entries describing the same member"));
                }
                pending.long_name = Some(self.read_meta(size)?);
                continue;
            }
            if recognized && kind.is_gnu_longlink() {
                if pending.long_link.is_some() {
                    return Err(invalid("two long link entries describing the same member"));
                }
                pending.long_link = Some(self.read_meta(size)?);
                continue;
            }
            if recognized && kind.is_pax_local_extensions() {
                if pending.pax.is_some() {
                    return Err(invalid("two pax extensions entries describing the same member"));
                }
                pending.pax = Some(if size <= self.max_header_bytes {
                    let mut data = Vec::new();
                    self.read_to_end(&mut data)?;
                    parse_pax(&data)
                } else {
                    pending.pax_dropped = Some(size);
                    self.stream_pax(size)?
                });
                continue;
            }
            if kind.is_pax_global_extensions() {
                // Global headers set defaults (times, owners) that nothing here reads.
                continue;
            }
            return Ok(Some(self.entry(header, kind, size, pending)));
        }
    }

    /// Reads the next header block, passing over the rest of the previous entry; `None`
    /// at the end of the archive (end of stream, or a zero block).
    fn next_header(&mut self) -> io::Result<Option<[u8; 512]>> {
        // Reads stop at the entry's end, so the stream is never past the next header.
        let gap = self.next.saturating_sub(self.pos);
        self.inner.skip(gap)?;
        self.pos += gap;
        let mut block = [0u8; 512];
        if !self.fill(&mut block)? {
            return Ok(None);
        }
        if block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let header = Header::from_byte_slice(&block);
        let sum = block[..148].iter().chain(&block[156..]).fold(0u32, |sum, &b| sum + u32::from(b)) + 8 * 32;
        if header.cksum()? != sum {
            return Err(invalid("archive header checksum mismatch"));
        }
        Ok(Some(block))
    }

    /// Fills `block` from the stream: false at a clean end, an error inside a block.
    fn fill(&mut self, block: &mut [u8]) -> io::Result<bool> {
        let mut read = 0;
        while read < block.len() {
            match self.inner.read(&mut block[read..]) {
                Ok(0) if read == 0 => return Ok(false),
                Ok(0) => return Err(invalid("archive ends inside a header")),
                Ok(n) => {
                    read += n;
                    self.pos += n as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(true)
    }

    /// A GNU sparse header's extension blocks follow it, each saying whether another
    /// follows: read one at a time, since only the data's size matters here.
    fn skip_sparse_extensions(&mut self) -> io::Result<()> {
        loop {
            let mut block = [0u8; 512];
            if !self.fill(&mut block)? {
                return Err(invalid("archive ends inside a sparse header"));
            }
            // `isextended` is the byte after 21 sparse descriptors of 24 bytes.
            if block[504] == 0 {
                return Ok(());
            }
        }
    }

    /// The current entry's data starts here and holds `size` bytes.
    fn start_data(&mut self, size: u64) -> io::Result<()> {
        let padded = size.checked_add(BLOCK - 1).ok_or_else(|| invalid("size overflow"))? & !(BLOCK - 1);
        self.data_end = self.pos + size;
        self.next = self.pos.checked_add(padded).ok_or_else(|| invalid("size overflow"))?;
        Ok(())
    }

    /// A long name or link: kept when it is within the limit, else left to be skipped.
    fn read_meta(&mut self, size: u64) -> io::Result<Meta> {
        if size > self.max_header_bytes {
            return Ok(Meta::Dropped(size));
        }
        let mut data = Vec::with_capacity(size as usize);
        self.read_to_end(&mut data)?;
        if (data.len() as u64) < size {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive ends inside a long name"));
        }
        // GNU tar terminates the name with NUL.
        while data.last() == Some(&0) {
            data.pop();
        }
        Ok(Meta::Kept(data))
    }

    /// An over-limit PAX header, read as a stream for its `size` record alone, so that
    /// the entries after it are still found; its paths are dropped unread.
    fn stream_pax(&mut self, size: u64) -> io::Result<Pax> {
        let mut pax = Pax { path: Some(Meta::Dropped(size)), linkpath: None, size: None };
        let mut reader = BufReader::with_capacity(16 << 10, (&mut *self).take(size));
        // Each record is `LENGTH KEY=VALUE\n`, LENGTH counting the whole record.
        loop {
            let mut digits = Vec::new();
            let read = (&mut reader).take(21).read_until(b' ', &mut digits)?;
            if read == 0 {
                break;
            }
            let Some(length) = digits.strip_suffix(b" ").and_then(|d| std::str::from_utf8(d).ok()).and_then(|d| d.parse::<u64>().ok())
            else {
                break;
            };
            let Some(mut rest) = length.checked_sub(read as u64) else {
                break;
            };
            let mut key = Vec::new();
            let read = (&mut reader).take(rest.min(MAX_PAX_KEY as u64 + 1)).read_until(b'=', &mut key)?;
            rest -= read as u64;
            if key.strip_suffix(b"=") == Some(b"size") && rest <= MAX_PAX_SIZE_VALUE as u64 {
                let mut value = Vec::new();
                (&mut reader).take(rest).read_to_end(&mut value)?;
                rest = 0;
                pax.size = pax_number(value.strip_suffix(b"\n").unwrap_or(&value));
            } else if key.strip_suffix(b"=") == Some(b"linkpath") {
                pax.linkpath = Some(Meta::Dropped(size));
            }
            let skipped = io::copy(&mut (&mut reader).take(rest), &mut io::sink())?;
            if skipped < rest {
                break;
            }
        }
        // What the loop left (a malformed tail) is skipped with the entry.
        Ok(pax)
    }

    fn entry(&self, header: &Header, kind: EntryType, size: u64, pending: Pending) -> Entry {
        let mut dropped = None;
        let mut take = |meta: Option<Meta>, what: &str| match meta {
            Some(Meta::Kept(bytes)) => Some(Some(bytes)),
            Some(Meta::Dropped(size)) => {
                dropped
                    .get_or_insert(format!("{what} of {size} bytes, over the {}-byte header limit: entry skipped", self.max_header_bytes));
                Some(None)
            }
            None => None,
        };
        let (pax_path, pax_link) = match pending.pax {
            Some(pax) => (pax.path, pax.linkpath),
            None => (None, None),
        };
        let pax_what = if pending.pax_dropped.is_some() { "PAX header" } else { "PAX path" };
        let path = take(pax_path, pax_what)
            .or_else(|| take(pending.long_name, "GNU long name"))
            .unwrap_or_else(|| Some(header.path_bytes().into_owned()));
        let link = take(pax_link, "PAX link path")
            .or_else(|| take(pending.long_link, "GNU long link name"))
            .unwrap_or_else(|| header.link_name_bytes().map(|name| name.into_owned()));
        Entry { path, link, kind, mode: header.mode().ok(), size, offset: self.pos, dropped }
    }
}

/// The current entry's data.
impl<R: Source> Read for TarStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.data_end.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let read = self.inner.read(&mut buf[..want])?;
        self.pos += read as u64;
        Ok(read)
    }
}

/// The records of a PAX header held in memory; malformed records end the parse, as they
/// make the `tar` crate ignore the rest.
fn parse_pax(mut data: &[u8]) -> Pax {
    let mut pax = Pax::default();
    while let Some(space) = data.iter().position(|&b| b == b' ') {
        let Some(length) = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|&length| length > space && length <= data.len())
        else {
            break;
        };
        let record = &data[space + 1..length];
        data = &data[length..];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        let Some(eq) = record.iter().position(|&b| b == b'=') else {
            break;
        };
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => pax.path = Some(Meta::Kept(value.to_vec())),
            b"linkpath" => pax.linkpath = Some(Meta::Kept(value.to_vec())),
            b"size" => pax.size = pax_number(value),
            _ => {}
        }
    }
    pax
}

fn pax_number(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Source for &[u8] {}

    fn entries(tar: &[u8], limit: u64) -> Vec<Entry> {
        let mut stream = TarStream::new(tar, limit);
        let mut found = Vec::new();
        while let Some(entry) = stream.next_entry().unwrap() {
            found.push(entry);
        }
        found
    }

    fn pax_header(records: &[(&str, &[u8])]) -> Vec<u8> {
        let mut data = Vec::new();
        for (key, value) in records {
            let body = key.len() + value.len() + 3;
            // The length counts its own digits.
            let mut length = body + body.to_string().len();
            if length.to_string().len() + body != length {
                length += 1;
            }
            data.extend_from_slice(format!("{length} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        data
    }

    fn append_pax(builder: &mut tar::Builder<Vec<u8>>, records: &[(&str, &[u8])]) {
        let data = pax_header(records);
        let mut header = Header::new_ustar();
        header.set_path("PaxHeaders/x").unwrap();
        header.set_entry_type(EntryType::XHeader);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, &data[..]).unwrap();
    }

    fn append_file(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut header = Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, path, data).unwrap();
    }

    #[test]
    fn long_names_and_pax_paths_within_the_limit_are_read_as_the_tar_crate_reads_them() {
        let mut builder = tar::Builder::new(Vec::new());
        let long = format!("usr/{}/file", "d".repeat(300));
        append_file(&mut builder, &long, b"long");
        append_pax(&mut builder, &[("path", b"etc/from-pax"), ("mtime", b"1.5")]);
        append_file(&mut builder, "etc/ignored", b"pax");
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, "bin/link", format!("/{}", "t".repeat(200))).unwrap();
        let tar = builder.into_inner().unwrap();

        let mut stream = TarStream::new(&tar[..], 1 << 20);
        let mut seen = Vec::new();
        while let Some(entry) = stream.next_entry().unwrap() {
            let mut data = String::new();
            stream.read_to_string(&mut data).unwrap();
            seen.push((entry.path.unwrap(), entry.link, data));
        }
        assert_eq!(seen[0].0, long.as_bytes());
        assert_eq!(seen[0].2, "long");
        assert_eq!(seen[1].0, b"etc/from-pax");
        assert_eq!(seen[1].2, "pax");
        assert_eq!(seen[2].1.as_deref(), Some(format!("/{}", "t".repeat(200)).as_bytes()));
    }

    #[test]
    fn over_limit_metadata_is_dropped_but_the_walk_goes_on() {
        let mut builder = tar::Builder::new(Vec::new());
        let long = format!("usr/{}/file", "d".repeat(2000));
        append_file(&mut builder, &long, b"long");
        // An over-limit PAX header still gives the next entry its size.
        let huge = vec![b'p'; 4000];
        append_pax(&mut builder, &[("path", &huge), ("size", b"3")]);
        let mut header = Header::new_ustar();
        header.set_path("etc/short").unwrap();
        header.set_size(0);
        header.set_cksum();
        builder.append(&header, &b"abc"[..]).unwrap();
        append_file(&mut builder, "etc/after", b"after");
        let tar = builder.into_inner().unwrap();

        let found = entries(&tar, 1024);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].path.is_none());
        assert!(found[0].dropped.as_ref().unwrap().contains("GNU long name"), "{found:?}");
        assert!(found[1].path.is_none());
        assert_eq!(found[1].size, 3);
        assert!(found[1].dropped.as_ref().unwrap().contains("PAX header"), "{found:?}");
        assert_eq!(found[2].path.as_deref(), Some(&b"etc/after"[..]));
    }
}
