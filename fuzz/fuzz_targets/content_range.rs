//! The upload `Content-Range: <start>-<end>` of a PATCH or closing PUT
//! (parse_content_range), and the `Range: bytes=...` of a blob GET (parse_range).
//!
//! An accepted Content-Range must describe a chunk whose length (`end - start + 1`, as
//! the upload handler computes it) is a u64: otherwise the handler's arithmetic
//! overflows. An accepted Range lies inside the blob.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_registry::{parse_content_range, parse_range};

fuzz_target!(|data: &[u8]| {
    // The blob size for Range comes first, so that small and huge blobs both get tried.
    let (size, rest) = match data.split_first_chunk::<8>() {
        Some((size, rest)) => (u64::from_le_bytes(*size), rest),
        None => (0, data),
    };
    let Ok(value) = std::str::from_utf8(rest) else { return };

    for candidate in [value, data_as_text(data)] {
        if let Ok((start, end)) = parse_content_range(candidate) {
            assert!(start <= end, "{candidate:?} read as {start}-{end}");
            // Printed canonically, the range reads back the same.
            assert_eq!(parse_content_range(&format!("{start}-{end}")).ok(), Some((start, end)));
            let len = end.checked_sub(start).and_then(|d| d.checked_add(1));
            assert!(len.is_some(), "Content-Range {candidate:?} is accepted but its length {end} - {start} + 1 overflows u64");
        }
    }

    match parse_range(value, size) {
        Ok(Some((start, end))) => {
            assert!(start <= end && end < size, "Range {value:?} on {size} bytes read as {start}-{end}");
            assert!(value.trim().starts_with("bytes=") && !value.contains(','));
        }
        Ok(None) => assert!(!value.trim().starts_with("bytes=") || value.contains(','), "Range {value:?} ignored"),
        Err(_) => {}
    }
});

/// The whole input as text, when it is: the size prefix is only for Range.
fn data_as_text(data: &[u8]) -> &str {
    std::str::from_utf8(data).unwrap_or_default()
}
