//! What the oracle tests share: a seeded random stream (a failure reproduces) and where
//! the oracles scripts/install-test-deps installs are found.

use std::path::{Path, PathBuf};

pub const INSTALL_HINT: &str = "run scripts/install-test-deps (as root) to install the oracles";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("the crate sits in crates/ of the workspace").to_path_buf()
}

/// The Python that has the oracles' packages (packaging, cvss): ORACLE_PYTHON, else the
/// venv install-test-deps makes. Fails the test, naming the fix, when it is missing.
pub fn python() -> PathBuf {
    let python = match std::env::var_os("ORACLE_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => workspace_root().join("target/tools/venv/bin/python"),
    };
    assert!(python.exists(), "{} not found: {INSTALL_HINT} (or set ORACLE_PYTHON)", python.display());
    python
}

/// SplitMix64: a seeded, deterministic stream.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
