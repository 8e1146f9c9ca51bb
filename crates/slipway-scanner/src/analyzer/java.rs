//! Java archives (jar, war, ear and plugin archives), read front to back through their
//! local file headers so that no archive is ever held whole, nested ones included.

use super::{Ecosystem, FoundPackage};
use crate::ScanError;
use flate2::bufread::DeflateDecoder;
use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};

const EXTENSIONS: [&str; 5] = [".jar", ".war", ".ear", ".jpi", ".hpi"];
/// Archives in archives in archives: deeper nesting is not built by any Java tool.
const MAX_DEPTH: usize = 3;
/// pom.properties and manifests are small; a larger one is not one.
const MAX_METADATA_BYTES: u64 = 1 << 20;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const STORED: u16 = 0;
const DEFLATED: u16 = 8;

pub(super) fn is_archive(path: &str) -> bool {
    EXTENSIONS.iter().any(|extension| path.ends_with(extension))
}

/// The Maven artifacts in an archive and the archives nested in it. What was found
/// before a corrupt entry is kept alongside the error. Entries are inflated only when
/// read or when their size is unknown, and at most `budget` bytes in all, so that a zip
/// bomb inside a layer costs no more than the layer limit allows.
pub(super) fn packages(reader: &mut dyn Read, budget: u64) -> (Vec<FoundPackage>, Option<ScanError>) {
    let mut found = Vec::new();
    let mut buffered = BufReader::with_capacity(64 << 10, reader);
    let budget = Cell::new(budget);
    let error = scan(&mut buffered, None, 0, &budget, &mut found)
        .err()
        .map(|err| ScanError::Malformed { what: "Java archive", detail: err.to_string() });
    (found, error)
}

/// Artifacts of one archive: its pom.properties files, else what its manifest says.
fn scan(
    reader: &mut dyn BufRead,
    inner_path: Option<&str>,
    depth: usize,
    budget: &Cell<u64>,
    found: &mut Vec<FoundPackage>,
) -> io::Result<()> {
    let mut poms = Vec::new();
    let mut manifest = None;
    while let Some(entry) = next_entry(reader)? {
        let nested = is_archive(&entry.name) && depth < MAX_DEPTH;
        let wanted = nested || entry.name == "META-INF/MANIFEST.MF" || is_pom(&entry.name);
        if !wanted && !entry.descriptor {
            io::copy(&mut reader.take(entry.compressed), &mut io::sink())?;
            continue;
        }
        let mut data = Metered { inner: entry_reader(reader, &entry)?, budget };
        if is_pom(&entry.name) {
            poms.extend(pom_properties(&read_small(&mut data)?));
        } else if entry.name == "META-INF/MANIFEST.MF" {
            manifest = manifest_artifact(&read_small(&mut data)?);
        } else if nested {
            let nested_path = match inner_path {
                Some(outer) => format!("{outer}!/{}", entry.name),
                None => entry.name.clone(),
            };
            let mut nested = BufReader::with_capacity(64 << 10, &mut data);
            scan(&mut nested, Some(&nested_path), depth + 1, budget, found)?;
        }
        // Whatever the entry's reader left unread must pass before the next header.
        io::copy(&mut data, &mut io::sink())?;
        drop(data);
        if entry.descriptor {
            read_descriptor(reader, entry.zip64)?;
        }
    }
    let artifacts = if poms.is_empty() { manifest.into_iter().collect() } else { poms };
    for (name, version) in artifacts {
        let mut package = FoundPackage::new(Ecosystem::Maven, name, version);
        package.inner_path = inner_path.map(str::to_owned);
        found.push(package);
    }
    Ok(())
}

fn is_pom(name: &str) -> bool {
    name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties")
}

/// Counts inflated bytes against the archive's budget.
struct Metered<'b, R> {
    inner: R,
    budget: &'b Cell<u64>,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        let left = self.budget.get().checked_sub(read as u64);
        self.budget.set(left.unwrap_or_default());
        match left {
            Some(_) => Ok(read),
            None => Err(invalid("inflates to more than the layer size limit")),
        }
    }
}

struct Entry {
    name: String,
    method: u16,
    compressed: u64,
    descriptor: bool,
    zip64: bool,
}

/// The next local file header, or `None` where the central directory starts.
fn next_entry(reader: &mut dyn BufRead) -> io::Result<Option<Entry>> {
    let mut signature = [0u8; 4];
    match reader.read_exact(&mut signature) {
        Ok(()) => {}
        // An archive may end without a central directory when it was cut for size.
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    match u32::from_le_bytes(signature) {
        LOCAL_HEADER => {}
        CENTRAL_HEADER | END_OF_CENTRAL => return Ok(None),
        _ => return Err(invalid("not a zip local file header")),
    }
    let mut header = [0u8; 26];
    reader.read_exact(&mut header)?;
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("four bytes"));
    let flags = u16_at(2);
    let method = u16_at(4);
    let mut compressed = u64::from(u32_at(14));
    let mut name = vec![0u8; usize::from(u16_at(22))];
    reader.read_exact(&mut name)?;
    let mut extra = vec![0u8; usize::from(u16_at(24))];
    reader.read_exact(&mut extra)?;
    let mut zip64 = false;
    // The zip64 extra field holds the real sizes when the 32-bit ones are saturated.
    let mut fields = extra.as_slice();
    while fields.len() >= 4 {
        let id = u16::from_le_bytes([fields[0], fields[1]]);
        let len = usize::from(u16::from_le_bytes([fields[2], fields[3]]));
        let body = fields.get(4..4 + len).unwrap_or_default();
        if id == 1 {
            zip64 = true;
            if body.len() >= 16 && compressed == u64::from(u32::MAX) {
                compressed = u64::from_le_bytes(body[8..16].try_into().expect("eight bytes"));
            }
        }
        fields = fields.get(4 + len..).unwrap_or_default();
    }
    let descriptor = flags & FLAG_DESCRIPTOR != 0;
    if descriptor && method != DEFLATED {
        // Only a deflate stream marks its own end; without sizes nothing else can be skipped.
        return Err(invalid("an entry of unknown size that is not deflated"));
    }
    Ok(Some(Entry { name: String::from_utf8_lossy(&name).into_owned(), method, compressed, descriptor, zip64 }))
}

/// The entry's uncompressed bytes. Unknown methods read as empty after their raw bytes.
fn entry_reader<'r>(reader: &'r mut dyn BufRead, entry: &Entry) -> io::Result<Box<dyn Read + 'r>> {
    Ok(match (entry.method, entry.descriptor) {
        (DEFLATED, true) => Box::new(DeflateDecoder::new(reader)),
        (DEFLATED, false) => Box::new(DeflateDecoder::new(reader.take(entry.compressed))),
        (STORED, _) => Box::new(reader.take(entry.compressed)),
        _ => {
            io::copy(&mut reader.take(entry.compressed), &mut io::sink())?;
            Box::new(io::empty())
        }
    })
}

/// The data descriptor after a deflated entry: CRC and sizes, signature optional.
fn read_descriptor(reader: &mut dyn BufRead, zip64: bool) -> io::Result<()> {
    let mut word = [0u8; 4];
    reader.read_exact(&mut word)?;
    if u32::from_le_bytes(word) == DESCRIPTOR {
        reader.read_exact(&mut word)?;
    }
    let mut sizes = vec![0u8; if zip64 { 16 } else { 8 }];
    reader.read_exact(&mut sizes)
}

fn read_small(reader: &mut dyn Read) -> io::Result<String> {
    let mut data = Vec::new();
    reader.take(MAX_METADATA_BYTES).read_to_end(&mut data)?;
    Ok(String::from_utf8_lossy(&data).into_owned())
}

/// `groupId:artifactId` and version from a pom.properties.
fn pom_properties(text: &str) -> Option<(String, String)> {
    let mut group = None;
    let mut artifact = None;
    let mut version = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "groupId" => group = Some(value),
            "artifactId" => artifact = Some(value),
            "version" => version = Some(value),
            _ => {}
        }
    }
    Some((format!("{}:{}", group?, artifact?), version?.to_owned()))
}

/// What Maven's jar plugin writes as default implementation entries; a manifest
/// without a group names no Maven artifact.
fn manifest_artifact(text: &str) -> Option<(String, String)> {
    let mut attributes: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        match line.strip_prefix(' ') {
            // Manifest lines wrap at 72 bytes with a leading space.
            Some(rest) => {
                if let Some((_, value)) = attributes.last_mut() {
                    value.push_str(rest);
                }
            }
            None => {
                if let Some((key, value)) = line.split_once(": ") {
                    attributes.push((key.to_owned(), value.to_owned()));
                }
            }
        }
    }
    let get = |name: &str| attributes.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    let group = get("Implementation-Vendor-Id")?;
    let artifact = get("Implementation-Title")?;
    let version = get("Implementation-Version")?;
    Some((format!("{group}:{artifact}"), version))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pom_and_manifest_metadata() {
        let pom = "#Generated by Maven\ngroupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n";
        assert_eq!(pom_properties(pom), Some(("org.apache.logging.log4j:log4j-core".into(), "2.14.1".into())));
        assert_eq!(pom_properties("groupId=a\n"), None);
        let manifest = "Manifest-Version: 1.0\r\nImplementation-Title: commons-te\r\n xt\r\nImplementation-Version: 1.9\r\n\
                        Implementation-Vendor-Id: org.apache.commons\r\n\r\n";
        assert_eq!(manifest_artifact(manifest), Some(("org.apache.commons:commons-text".into(), "1.9".into())));
        assert_eq!(manifest_artifact("Manifest-Version: 1.0\n"), None);
    }

    #[test]
    fn not_a_zip() {
        let (found, error) = packages(&mut &b"PK\x03\x04short"[..], 1 << 20);
        assert!(found.is_empty() && error.is_some());
        let (found, error) = packages(&mut &b"hello"[..], 1 << 20);
        assert!(found.is_empty() && error.is_some());
    }
}
