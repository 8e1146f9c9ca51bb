//! Any byte stream as a layer blob, through the whole layer analyzer (analyze_layer):
//! compression sniffing, gzip and zstd, the streaming tar reader (GNU long names, PAX
//! headers, sparse entries), path normalisation, whiteouts, and every detector the
//! entries' paths select. The report must hold the invariants in `check_report`.
//!
//! The first byte picks how the rest is handed over: as is (compression given as none,
//! or sniffed), or compressed here with gzip or zstd so that the decompressors pass
//! valid streams on to the tar reader. A compressed layer must be analysed exactly as
//! its uncompressed tar is.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use slipway_fuzz::{LIMITS, analyze_tar, check_report};
use slipway_scanner::analyzer::{Compression, analyze_layer};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, tar)) = data.split_first() else { return };
    let (blob, compression) = match mode % 4 {
        0 => (tar.to_vec(), Compression::None),
        1 => (tar.to_vec(), Compression::Auto),
        2 => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(tar).expect("compressing in memory");
            (encoder.finish().expect("compressing in memory"), Compression::Gzip)
        }
        _ => (zstd::encode_all(tar, 1).expect("compressing in memory"), Compression::Auto),
    };
    let result = analyze_layer(&blob[..], compression, &LIMITS);
    if let Ok(report) = &result {
        check_report(report);
    }
    if mode % 4 >= 2 {
        let plain = analyze_tar(tar);
        match (&result, &plain) {
            (Ok(compressed), Ok(plain)) => assert_eq!(compressed, plain, "compression changed the report"),
            (Err(compressed), Err(plain)) => assert_eq!(compressed.to_string(), plain.to_string()),
            _ => panic!("compressed: {result:?}\nuncompressed: {plain:?}"),
        }
    }
});
