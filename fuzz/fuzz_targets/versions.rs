//! Every version ordering the matcher uses (version::Scheme: dpkg, apk, rpm, PEP 440,
//! semver/npm, Go, Maven, RubyGems, Composer), on three versions at a time: each must
//! be a total order on what it accepts (reflexive, antisymmetric, transitive), and a
//! version refused on one side of a comparison must be refused on the other. Also npm
//! range matching, and the ecosystem-to-scheme lookup.
//!
//! Maven is not checked for transitivity: the module follows Maven's ComparableVersion
//! quirks included, and Maven's own order has cycles (Maven 3.8.7's ComparableVersion
//! says `-a2` < `` < `c` < `-a2`: a list that starts with a 0 is equal to nothing but
//! above any qualifier).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use slipway_fuzz::check_order;
use slipway_scanner::version::{Scheme, npm_range_satisfies};

const SCHEMES: [Scheme; 9] = [
    Scheme::Dpkg,
    Scheme::Apk,
    Scheme::Rpm,
    Scheme::Pep440,
    Scheme::Semver,
    Scheme::Go,
    Scheme::Maven,
    Scheme::RubyGems,
    Scheme::Composer,
];

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let Ok(selector) = u8::arbitrary(&mut input) else { return };
    let scheme = SCHEMES[usize::from(selector) % SCHEMES.len()];
    // Three versions, one a line, so that the seeds are readable.
    let Ok(text) = std::str::from_utf8(input.take_rest()) else { return };
    let mut lines = text.splitn(3, '\n');
    let a = lines.next().unwrap_or_default();
    let b = lines.next().unwrap_or_default();
    let c = lines.next().unwrap_or_default();
    if [a, b, c].iter().any(|v| v.len() > 256) {
        return;
    }
    check_order([a, b, c], scheme != Scheme::Maven, |x: &str, y: &str| scheme.compare(x, y));

    if scheme == Scheme::Semver {
        // A range and two versions: no panic, and equal versions agree.
        if let (Ok(in_b), Ok(in_c)) = (npm_range_satisfies(a, b), npm_range_satisfies(a, c))
            && b == c
        {
            assert_eq!(in_b, in_c);
        }
    }
    let _ = Scheme::for_ecosystem(a);
});
