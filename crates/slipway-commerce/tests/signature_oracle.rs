//! `signature::{sign, verify}` agree with Stripe's own Python library (stripe 16.1.0, which
//! scripts/install-test-deps installs in target/tools/venv): what one signs the other
//! verifies, byte for byte the same header, and both refuse a tampered payload. A missing
//! oracle fails the test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use slipway_commerce::CommerceError;
use slipway_commerce::signature::{self, DEFAULT_TOLERANCE_SECS};
use slipway_types::Clock;

const INSTALL_HINT: &str = "run scripts/install-test-deps (as root) to install the Python stripe package";

fn python() -> PathBuf {
    let python = match std::env::var_os("SLIPWAY_TEST_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/venv/bin/python"),
    };
    assert!(python.exists(), "{} not found: {INSTALL_HINT} (or set SLIPWAY_TEST_PYTHON)", python.display());
    python
}

/// Runs every case through tests/oracle_signature.py in one process.
fn oracle(cases: &[Value]) -> Vec<Value> {
    let python = python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle_signature.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} ({INSTALL_HINT})", python.display()));
    let input = serde_json::to_vec(&json!({ "cases": cases })).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Written from another thread: a full stdout pipe would otherwise block both sides.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "the stripe oracle failed ({INSTALL_HINT}):\n{}", String::from_utf8_lossy(&output.stderr));
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answers.len(), cases.len());
    answers
}

/// SplitMix64: a seeded stream, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Text with what a signature must not trip over: separators of the header, quotes,
    /// newlines and characters of several UTF-8 lengths.
    fn text(&mut self, max_len: usize) -> String {
        const CHARS: &[char] = &['a', 'Z', '0', '9', '{', '}', '"', ':', ',', '=', '.', ' ', '\n', '\\', 'é', '€', '𝄞', 'ß'];
        (0..self.below(max_len + 1)).map(|_| CHARS[self.below(CHARS.len())]).collect()
    }
}

struct Case {
    payload: String,
    secret: String,
    timestamp: i64,
}

fn cases(now: i64) -> Vec<Case> {
    let mut rng = Rng(0x5111_9a7e);
    let mut cases = vec![
        Case { payload: String::new(), secret: "whsec_test".into(), timestamp: now },
        Case {
            payload: r#"{"id":"evt_1","object":"event","type":"charge.refunded"}"#.into(),
            secret: "whsec_€".into(),
            timestamp: now - 290,
        },
        Case { payload: "x".repeat(100_000), secret: "whsec_long".into(), timestamp: now + 290 },
    ];
    for _ in 0..40 {
        let secret = format!("whsec_{}", rng.text(40));
        cases.push(Case { payload: rng.text(300), secret, timestamp: now - 250 + rng.below(500) as i64 });
    }
    cases
}

fn now() -> i64 {
    Clock::system().now_ms() / 1000
}

#[test]
fn python_verifies_what_rust_signs_and_signs_the_same_header() {
    let now = now();
    let cases = cases(now);
    let mut queries = Vec::new();
    for case in &cases {
        let header = signature::sign(&case.secret, case.payload.as_bytes(), case.timestamp);
        queries.push(
            json!({"op": "verify", "payload": case.payload, "header": header, "secret": case.secret, "tolerance": DEFAULT_TOLERANCE_SECS}),
        );
        queries.push(json!({"op": "sign", "payload": case.payload, "secret": case.secret, "timestamp": case.timestamp}));
    }
    let answers = oracle(&queries);
    for (i, case) in cases.iter().enumerate() {
        let (verified, signed) = (&answers[2 * i], &answers[2 * i + 1]);
        assert_eq!(verified["ok"], true, "python refused our signature of {:?}: {}", case.payload, verified["error"]);
        assert_eq!(signed["header"], queries[2 * i]["header"], "different headers for {:?}", case.payload);
    }
}

#[test]
fn rust_verifies_what_python_signs() {
    let now = now();
    let cases = cases(now);
    let queries: Vec<Value> =
        cases.iter().map(|c| json!({"op": "sign", "payload": c.payload, "secret": c.secret, "timestamp": c.timestamp})).collect();
    for (case, answer) in cases.iter().zip(oracle(&queries)) {
        let header = answer["header"].as_str().unwrap();
        assert_eq!(
            signature::verify(&case.secret, case.payload.as_bytes(), header, now, DEFAULT_TOLERANCE_SECS).unwrap(),
            case.timestamp,
            "{header} for {:?}",
            case.payload
        );
    }
}

#[test]
fn both_refuse_tampered_payloads_wrong_secrets_and_old_timestamps() {
    let now = now();
    let payload = r#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount":1000}}}"#;
    let tampered = payload.replace("1000", "1");
    let secret = "whsec_test_secret";
    let good = signature::sign(secret, payload.as_bytes(), now);
    let old = signature::sign(secret, payload.as_bytes(), now - 3600);
    let other = signature::sign("whsec_rolled", payload.as_bytes(), now);
    let good_sig = good.split_once(",v1=").unwrap().1;
    let other_sig = other.split_once(",v1=").unwrap().1;
    // Two v1 entries (a secret being rolled), one of them right: both accept.
    let two = format!("t={now},v1={other_sig},v1={good_sig}");
    let checks: [(&str, &str, &str, bool); 5] = [
        (&tampered, &good, secret, false),
        (payload, &good, "whsec_other", false),
        (payload, &old, secret, false),
        (payload, &format!("t={now},v0={good_sig}"), secret, false),
        (payload, &two, secret, true),
    ];
    let queries: Vec<Value> = checks
        .iter()
        .map(|(payload, header, secret, _)| json!({"op": "verify", "payload": payload, "header": header, "secret": secret, "tolerance": DEFAULT_TOLERANCE_SECS}))
        .collect();
    for ((payload, header, secret, expected), answer) in checks.iter().zip(oracle(&queries)) {
        let ours = signature::verify(secret, payload.as_bytes(), header, now, DEFAULT_TOLERANCE_SECS);
        assert_eq!(answer["ok"], *expected, "python on {header}: {}", answer["error"]);
        assert_eq!(ours.is_ok(), *expected, "rust on {header}: {ours:?}");
    }
    assert!(matches!(
        signature::verify(secret, tampered.as_bytes(), &good, now, DEFAULT_TOLERANCE_SECS),
        Err(CommerceError::Signature(m)) if m.contains("matches the payload")
    ));
    assert!(matches!(
        signature::verify(secret, payload.as_bytes(), &old, now, DEFAULT_TOLERANCE_SECS),
        Err(CommerceError::Signature(m)) if m.contains("away from now")
    ));
}

#[test]
fn a_timestamp_far_ahead_is_refused_here_though_python_only_checks_old_ones() {
    let now = now();
    let payload = "{}";
    let ahead = signature::sign("whsec_x", payload.as_bytes(), now + 3600);
    let answer =
        &oracle(&[json!({"op": "verify", "payload": payload, "header": ahead, "secret": "whsec_x", "tolerance": DEFAULT_TOLERANCE_SECS})])
            [0];
    // The signature itself is right (Python accepts it): only the time refuses it here.
    assert_eq!(answer["ok"], true, "{}", answer["error"]);
    assert!(matches!(
        signature::verify("whsec_x", payload.as_bytes(), &ahead, now, DEFAULT_TOLERANCE_SECS),
        Err(CommerceError::Signature(m)) if m.contains("away from now")
    ));
}
