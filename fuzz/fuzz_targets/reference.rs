//! Image references and names: what a client puts in a `/v2/` URL or on the command line.
//! RepoName, Tag, Digest and Reference (slipway-oci) and `slipway scan`'s ImageRef each
//! parse back to the same value from their own printed form, and what they accept keeps
//! the promises the types document (no traversal, no escapes, tags without colons...).
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway::scan::ImageRef;
use slipway_oci::{Algorithm, Digest, Reference, RepoName, Tag};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The whole input, and each piece a reference is made of.
    check(text);
    for piece in text.split(['/', '@']) {
        check(piece);
    }
});

fn check(text: &str) {
    if let Ok(name) = text.parse::<RepoName>() {
        // Stored as given: the printed form is the input, and reads back the same.
        assert_eq!(name.to_string(), text);
        assert_eq!(name.as_str().parse::<RepoName>().as_ref(), Ok(&name));
        // What the type promises storage keys: no traversal, escapes, absolute paths or
        // upper case, and a bounded length.
        assert!(text.len() <= 255, "{text:?}");
        assert!(!text.starts_with('/') && !text.ends_with('/') && !text.contains("//"), "{text:?}");
        assert!(text.split('/').all(|part| !part.is_empty() && part != "." && part != ".."), "{text:?}");
        assert!(!text.contains('%') && !text.contains(':') && !text.bytes().any(|b| b.is_ascii_uppercase()), "{text:?}");
    }
    if let Ok(tag) = text.parse::<Tag>() {
        assert_eq!(tag.to_string(), text);
        assert_eq!(tag.as_str().parse::<Tag>().as_ref(), Ok(&tag));
        // A reference is a digest exactly when it holds a colon: tags cannot.
        assert!(!text.contains(':') && !text.contains('/') && text.len() <= 128, "{text:?}");
    }
    if let Ok(digest) = text.parse::<Digest>() {
        assert_eq!(digest.to_string(), text);
        assert_eq!(digest.to_string().parse::<Digest>().as_ref(), Ok(&digest));
        let expected_len = match digest.algorithm() {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        };
        // Safe in storage keys: lowercase hex of the algorithm's exact length.
        assert_eq!(digest.hex().len(), expected_len);
        assert!(digest.hex().bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{text:?}");
    }
    if let Ok(reference) = text.parse::<Reference>() {
        assert_eq!(reference.to_string(), text);
        assert_eq!(reference.to_string().parse::<Reference>().as_ref(), Ok(&reference));
        match &reference {
            Reference::Tag(_) => assert!(!text.contains(':')),
            Reference::Digest(_) => assert!(text.contains(':')),
        }
    }
    if let Ok(image) = text.parse::<ImageRef>() {
        let printed = image.to_string();
        let again: ImageRef = printed.parse().unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e:#}"));
        assert_eq!(again, image, "{text:?} printed as {printed:?}");
        assert!(!image.host.is_empty() && !image.host.contains('/'), "{image:?}");
        if let Some(tag) = &image.tag {
            assert!(tag.parse::<Tag>().is_ok(), "{image:?}");
        }
    }
}
