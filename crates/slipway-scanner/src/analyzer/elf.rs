//! Just enough ELF to pull build metadata out of an executable read as a forward-only
//! stream: the headers say where the metadata can be, and only those byte ranges are
//! kept while the rest streams past.

use std::io::{self, Read};

/// The Go linker puts `.go.buildinfo` first in the writable segment; Go's own reader
/// searches this much of it.
const GO_SEARCH_BYTES: u64 = 64 << 10;
/// What follows the loaded segments of a stripped binary (the `.dep-v0` section among
/// it) is small; a longer tail is debug information, not worth holding.
const TAIL_BYTES: u64 = 16 << 20;
const PT_LOAD: u32 = 1;
const PF_W: u32 = 2;

/// The parts of an executable that hold build metadata.
#[derive(Debug, Default)]
pub(super) struct Metadata {
    /// The start of the first writable loaded segment (Go build info).
    pub writable_start: Vec<u8>,
    /// The `.dep-v0` section that cargo-auditable embeds.
    pub dep_v0: Option<Vec<u8>>,
}

/// Reads an ELF file of `size` bytes from its first byte. `None` when it is not ELF.
/// At most `cap` bytes (and [`TAIL_BYTES`] of the tail) are held for any one range;
/// larger ones are not collected.
pub(super) fn read_metadata(reader: &mut impl Read, size: u64, cap: u64) -> io::Result<Option<Metadata>> {
    let mut stream = Stream { reader, pos: 0 };
    let mut ident = [0u8; 64];
    if size < 64 || !stream.fill(&mut ident)? || ident[..4] != *b"\x7fELF" {
        return Ok(None);
    }
    let Some(layout) = Layout::new(&ident) else {
        return Ok(None);
    };
    let header = layout.file_header(&ident);
    let table_len = u64::from(header.phnum) * u64::from(header.phentsize);
    let mut table = Vec::new();
    // Relocatable objects have no program headers.
    if header.phnum > 0 {
        if header.phoff < stream.pos || table_len > 64 << 10 || header.phentsize < layout.phdr_min() {
            return Ok(None);
        }
        stream.skip_to(header.phoff)?;
        table.resize(table_len as usize, 0);
        if !stream.fill(&mut table)? {
            return Ok(None);
        }
    }
    let segments: Vec<Segment> = table.chunks_exact(usize::from(header.phentsize).max(1)).map(|raw| layout.segment(raw)).collect();
    let loads = segments.iter().filter(|segment| segment.kind == PT_LOAD);

    let mut wanted = Vec::new();
    if let Some(writable) = loads.clone().find(|segment| segment.flags & PF_W != 0) {
        wanted.push(Range::new(writable.offset, writable.filesz.min(GO_SEARCH_BYTES)));
    }
    // Non-allocated sections (`.dep-v0` among them), the section names and usually the
    // section table follow the loaded segments.
    let tail = loads.map(|segment| segment.offset.saturating_add(segment.filesz)).max().unwrap_or(stream.pos).max(stream.pos);
    if size > tail && size - tail <= cap.min(TAIL_BYTES) {
        wanted.push(Range::new(tail, size - tail));
    }
    // Go writes the section table right after the program headers instead.
    let section_table = u64::from(header.shnum) * u64::from(header.shentsize);
    if header.shoff >= stream.pos && header.shoff < tail && header.shentsize >= layout.shdr_min() {
        wanted.push(Range::new(header.shoff, section_table));
    }
    wanted.retain(|range| range.start >= stream.pos && range.len <= cap && range.start.saturating_add(range.len) <= size);
    stream.collect(&mut wanted)?;

    let writable_start = match segments.iter().find(|s| s.kind == PT_LOAD && s.flags & PF_W != 0) {
        Some(writable) => slice(&wanted, writable.offset, writable.filesz.min(GO_SEARCH_BYTES)).unwrap_or_default().to_vec(),
        None => Vec::new(),
    };
    let dep_v0 = find_section(&layout, &header, &wanted, b".dep-v0").map(<[u8]>::to_vec);
    Ok(Some(Metadata { writable_start, dep_v0 }))
}

fn find_section<'w>(layout: &Layout, header: &FileHeader, wanted: &'w [Range], name: &[u8]) -> Option<&'w [u8]> {
    if header.shentsize < layout.shdr_min() {
        return None;
    }
    let table = slice(wanted, header.shoff, u64::from(header.shnum) * u64::from(header.shentsize))?;
    let sections: Vec<Section> = table.chunks_exact(usize::from(header.shentsize)).map(|raw| layout.section(raw)).collect();
    let names = sections.get(usize::from(header.shstrndx))?;
    let names = slice(wanted, names.offset, names.size)?;
    let section = sections.iter().find(|section| {
        let start = section.name as usize;
        names.get(start..).is_some_and(|rest| rest.split(|&b| b == 0).next() == Some(name))
    })?;
    slice(wanted, section.offset, section.size)
}

/// The bytes at `offset..offset + len` if one collected range holds them all.
fn slice(wanted: &[Range], offset: u64, len: u64) -> Option<&[u8]> {
    wanted.iter().find_map(|range| {
        let start = offset.checked_sub(range.start)?;
        let end = start.checked_add(len)?;
        range.data.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
    })
}

struct Range {
    start: u64,
    len: u64,
    data: Vec<u8>,
}

impl Range {
    fn new(start: u64, len: u64) -> Self {
        Self { start, len, data: Vec::new() }
    }
}

struct Stream<'r, R> {
    reader: &'r mut R,
    pos: u64,
}

impl<R: Read> Stream<'_, R> {
    /// Fills `buf`, or returns false at the end of the file.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        match self.reader.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(true)
            }
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(err) => Err(err),
        }
    }

    fn skip_to(&mut self, offset: u64) -> io::Result<()> {
        let skipped = io::copy(&mut self.reader.take(offset - self.pos), &mut io::sink())?;
        self.pos += skipped;
        Ok(())
    }

    /// Streams to the end of the last range, copying each range's bytes as they pass.
    fn collect(&mut self, ranges: &mut [Range]) -> io::Result<()> {
        let Some(end) = ranges.iter().map(|range| range.start + range.len).max() else {
            return Ok(());
        };
        let mut chunk = vec![0u8; 64 << 10];
        while self.pos < end {
            let want = chunk.len().min(usize::try_from(end - self.pos).unwrap_or(usize::MAX));
            let read = self.reader.read(&mut chunk[..want])?;
            if read == 0 {
                break;
            }
            let (chunk_start, chunk_end) = (self.pos, self.pos + read as u64);
            for range in ranges.iter_mut() {
                let from = range.start.max(chunk_start);
                let to = (range.start + range.len).min(chunk_end);
                if from < to {
                    range.data.extend_from_slice(&chunk[(from - chunk_start) as usize..(to - chunk_start) as usize]);
                }
            }
            self.pos = chunk_end;
        }
        Ok(())
    }
}

/// Word size and byte order, from the identification bytes.
struct Layout {
    wide: bool,
    big_endian: bool,
}

struct FileHeader {
    phoff: u64,
    shoff: u64,
    phentsize: u16,
    phnum: u16,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
}

struct Segment {
    kind: u32,
    flags: u32,
    offset: u64,
    filesz: u64,
}

struct Section {
    name: u32,
    offset: u64,
    size: u64,
}

impl Layout {
    fn new(ident: &[u8]) -> Option<Self> {
        let wide = match ident[4] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let big_endian = match ident[5] {
            1 => false,
            2 => true,
            _ => return None,
        };
        Some(Self { wide, big_endian })
    }

    fn phdr_min(&self) -> u16 {
        if self.wide { 56 } else { 32 }
    }

    fn shdr_min(&self) -> u16 {
        if self.wide { 64 } else { 40 }
    }

    fn u16(&self, raw: &[u8], at: usize) -> u16 {
        let bytes = [raw[at], raw[at + 1]];
        if self.big_endian { u16::from_be_bytes(bytes) } else { u16::from_le_bytes(bytes) }
    }

    fn u32(&self, raw: &[u8], at: usize) -> u32 {
        let bytes: [u8; 4] = raw[at..at + 4].try_into().expect("four bytes");
        if self.big_endian { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) }
    }

    fn u64(&self, raw: &[u8], at: usize) -> u64 {
        let bytes: [u8; 8] = raw[at..at + 8].try_into().expect("eight bytes");
        if self.big_endian { u64::from_be_bytes(bytes) } else { u64::from_le_bytes(bytes) }
    }

    /// A word: 8 bytes in ELF64, 4 in ELF32.
    fn word(&self, raw: &[u8], at: usize) -> u64 {
        if self.wide { self.u64(raw, at) } else { u64::from(self.u32(raw, at)) }
    }

    fn file_header(&self, raw: &[u8]) -> FileHeader {
        let (phoff, shoff, rest) = if self.wide { (0x20, 0x28, 0x36) } else { (0x1c, 0x20, 0x2a) };
        FileHeader {
            phoff: self.word(raw, phoff),
            shoff: self.word(raw, shoff),
            phentsize: self.u16(raw, rest),
            phnum: self.u16(raw, rest + 2),
            shentsize: self.u16(raw, rest + 4),
            shnum: self.u16(raw, rest + 6),
            shstrndx: self.u16(raw, rest + 8),
        }
    }

    fn segment(&self, raw: &[u8]) -> Segment {
        if self.wide {
            Segment { kind: self.u32(raw, 0), flags: self.u32(raw, 4), offset: self.u64(raw, 8), filesz: self.u64(raw, 0x20) }
        } else {
            Segment {
                kind: self.u32(raw, 0),
                offset: u64::from(self.u32(raw, 4)),
                filesz: u64::from(self.u32(raw, 0x10)),
                flags: self.u32(raw, 0x18),
            }
        }
    }

    fn section(&self, raw: &[u8]) -> Section {
        let (offset, size) = if self.wide { (0x18, 0x20) } else { (0x10, 0x14) };
        Section { name: self.u32(raw, 0), offset: self.word(raw, offset), size: self.word(raw, size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_elf_or_too_short() {
        assert!(read_metadata(&mut &b"#!/bin/sh\nexit 0\n"[..], 17, 1 << 20).unwrap().is_none());
        let mut script = b"#!/bin/sh\n".to_vec();
        script.resize(200, b'#');
        assert!(read_metadata(&mut &script[..], 200, 1 << 20).unwrap().is_none());
        let mut truncated = b"\x7fELF\x02\x01\x01".to_vec();
        truncated.resize(40, 0);
        assert!(read_metadata(&mut &truncated[..], 4096, 1 << 20).unwrap().is_none());
    }

    #[test]
    fn hostile_header_sizes() {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        // One program header of size zero; a section table of zero-sized entries.
        elf[0x38] = 1;
        elf[0x28] = 64;
        elf[0x3c] = 3;
        elf.resize(4096, 0xff);
        assert!(read_metadata(&mut &elf[..], 4096, 1 << 20).unwrap().is_none());
        elf[0x38] = 0;
        let metadata = read_metadata(&mut &elf[..], 4096, 1 << 20).unwrap().unwrap();
        assert!(metadata.dep_v0.is_none() && metadata.writable_start.is_empty());
    }
}
