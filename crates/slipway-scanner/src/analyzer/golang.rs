//! Go build info, which `go build` embeds in every binary since Go 1.13 and in the
//! self-contained form read here since Go 1.18.

use super::{Ecosystem, FoundPackage};

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
/// Build info strings follow the header inline (Go 1.18+) instead of through pointers.
const FLAG_INLINE: u8 = 2;

/// The modules a Go binary was built from, and the standard library as `stdlib`.
/// `None` when `data` (the start of the writable segment) holds no build info.
pub(super) fn packages(data: &[u8]) -> Option<Vec<FoundPackage>> {
    // Go aligns the header to 16 bytes.
    let start = (0..data.len().saturating_sub(HEADER_LEN)).step_by(16).find(|&at| data[at..].starts_with(MAGIC))?;
    let header = &data[start..];
    if header[15] & FLAG_INLINE == 0 {
        return None;
    }
    let mut rest = &header[HEADER_LEN..];
    let go_version = std::str::from_utf8(read_bytes(&mut rest)?).ok()?;
    let mut modinfo = read_bytes(&mut rest)?;
    // The module info is framed by 16-byte binary sentinels.
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        modinfo = &modinfo[16..modinfo.len() - 16];
    }
    let modinfo = std::str::from_utf8(modinfo).ok()?;
    let mut found = Vec::new();
    let stdlib = go_version.strip_prefix("go").unwrap_or(go_version);
    // Experiments and other decorations follow the version after a space.
    let stdlib = stdlib.split_whitespace().next().unwrap_or(stdlib);
    found.push(FoundPackage::new(Ecosystem::Go, "stdlib", stdlib));
    for line in modinfo.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod" | "dep", path, version, ..] => {
                found.push(FoundPackage::new(Ecosystem::Go, *path, *version));
            }
            // A `replace` directive: the preceding module's code came from elsewhere.
            ["=>", path, version, ..] if found.len() > 1 => {
                let replaced = found.last_mut().expect("a module precedes");
                replaced.name = (*path).to_owned();
                replaced.version = (*version).to_owned();
            }
            _ => {}
        }
    }
    // `(devel)` is the main module built from a checkout; a local replacement has no
    // version: neither names a release advisories could speak of.
    found.retain(|package| package.version.starts_with('v') || package.name == "stdlib");
    for package in &mut found {
        // Advisories for Go give versions without the leading `v`.
        if let Some(bare) = package.version.strip_prefix('v') {
            package.version = bare.to_owned();
        }
    }
    Some(found)
}

/// Bytes prefixed with their length as an unsigned varint.
fn read_bytes<'d>(data: &mut &'d [u8]) -> Option<&'d [u8]> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let (&byte, rest) = data.split_first()?;
        *data = rest;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    let (text, rest) = (data.get(..len)?, data.get(len..)?);
    *data = rest;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_info(version: &str, modinfo: &str) -> Vec<u8> {
        let mut data = vec![0u8; 48];
        let mut header = MAGIC.to_vec();
        header.extend([8, FLAG_INLINE]);
        header.resize(HEADER_LEN, 0);
        data.extend(header);
        for text in [version, modinfo] {
            let mut len = text.len();
            while len >= 0x80 {
                data.push(u8::try_from(len & 0x7f).unwrap() | 0x80);
                len >>= 7;
            }
            data.push(u8::try_from(len).unwrap());
            data.extend(text.as_bytes());
        }
        data
    }

    #[test]
    fn modules_replacements_and_stdlib() {
        let modinfo = "\u{7f}123456789abcdefpath\texample.com/app\nmod\texample.com/app\t(devel)\t\n\
                       dep\tgolang.org/x/text\tv0.14.0\th1:abc=\ndep\texample.org/old\tv1.0.0\n\
                       =>\texample.org/new\tv1.1.0\th1:def=\ndep\texample.org/local\tv0.1.0\n=>\t../local\t\t\n\
                       build\tGOOS=linux\n\n0123456789abcdef";
        let found = packages(&build_info("go1.21.5 X:boringcrypto", modinfo)).unwrap();
        let names: Vec<(&str, &str)> = found.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(names, [("stdlib", "1.21.5"), ("golang.org/x/text", "0.14.0"), ("example.org/new", "1.1.0")]);
    }

    #[test]
    fn no_or_old_build_info() {
        assert!(packages(&[0u8; 4096]).is_none());
        let mut old = build_info("go1.17", "");
        old[48 + 15] = 0;
        assert!(packages(&old).is_none());
    }
}
