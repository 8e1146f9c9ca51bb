//! HTTPS on the main listener: rustls (aws-lc-rs, TLS 1.2 and 1.3) with the certificate
//! chain and key of `[tls]`, offering HTTP/2 and HTTP/1.1 through ALPN.
//!
//! Certificates are renewed while the server runs (ACME clients, cert-manager, a
//! Kubernetes secret's symlink swap), so every handshake looks at the two files' metadata
//! (two `stat` calls, against a handshake's public-key operations) and reads them again
//! when either changed: the next connection after a renewal gets the new certificate, with
//! no signal and no restart. A replacement that does not load (half written, a key that
//! does not match the certificate, not PEM) is logged and the certificate in use stays,
//! until the files change again.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// PEM files larger than this are refused: a chain of a few certificates and a key take a
/// few KiB; the bound keeps a wrong path (a log file, a disk image) from being read whole.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// The ALPN protocols offered, most preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Builds the acceptor for the configured files, loading them once now so that a wrong
/// path or a bad key stops the start rather than every handshake.
pub fn acceptor(cert_file: &Path, key_file: &Path) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certificate = Certificate::load(cert_file, key_file, provider.clone())?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(certificate));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificate served, read again from its files when they change.
#[derive(Debug)]
pub struct Certificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    /// The files' metadata when they were last looked at (loaded or not).
    stamp: Stamp,
    key: Arc<CertifiedKey>,
}

/// What changes when a file is rewritten in place (size, modification time) or replaced
/// by a rename or a symlink swap (device and inode of the file the path leads to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp([(u64, u64, i64, i64, u64); 2]);

impl Stamp {
    fn of(cert_file: &Path, key_file: &Path) -> std::io::Result<Stamp> {
        let one = |path: &Path| std::fs::metadata(path).map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()));
        Ok(Stamp([one(cert_file)?, one(key_file)?]))
    }
}

impl Certificate {
    pub fn load(cert_file: &Path, key_file: &Path, provider: Arc<CryptoProvider>) -> anyhow::Result<Certificate> {
        let stamp = Stamp::of(cert_file, key_file).with_context(|| format!("reading [tls] {}", cert_file.display()))?;
        let key = certified_key(cert_file, key_file, &provider)?;
        Ok(Certificate {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            provider,
            current: Mutex::new(Loaded { stamp, key: Arc::new(key) }),
        })
    }

    /// The certificate for the next handshake, read again first if a file changed.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        // A file missing for a moment (between an unlink and a rename) keeps the current
        // certificate; the next handshake looks again.
        if let Ok(stamp) = Stamp::of(&self.cert_file, &self.key_file)
            && stamp != current.stamp
        {
            // The stamp is taken before the read: a change during the read shows as
            // another change next time, and is read then.
            current.stamp = stamp;
            match certified_key(&self.cert_file, &self.key_file, &self.provider) {
                Ok(key) => {
                    tracing::info!(cert_file = %self.cert_file.display(), "TLS certificate reloaded");
                    current.key = Arc::new(key);
                }
                Err(e) => tracing::warn!(
                    cert_file = %self.cert_file.display(),
                    error = format!("{e:#}"),
                    "the changed TLS certificate or key does not load; the previous one is still served"
                ),
            }
        }
        current.key.clone()
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Reads the chain and the key and checks that the key is the certificate's.
fn certified_key(cert_file: &Path, key_file: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let pem = read_bounded(cert_file)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not a PEM certificate chain", cert_file.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{}: no PEM CERTIFICATE block", cert_file.display());
    let key = PrivateKeyDer::from_pem_slice(&read_bounded(key_file)?)
        .with_context(|| format!("{}: no PEM private key (PKCS#8, PKCS#1 or SEC1)", key_file.display()))?;
    CertifiedKey::from_der(chain, key, provider)
        .with_context(|| format!("{} and {} do not make a certificate and its key", cert_file.display(), key_file.display()))
}

fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(bytes.len() as u64 <= MAX_PEM_BYTES, "{}: larger than {MAX_PEM_BYTES} bytes, not a PEM file", path.display());
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pair {
        cert_pem: String,
        key_pem: String,
    }

    fn self_signed(name: &str) -> Pair {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        Pair { cert_pem: cert.cert.pem(), key_pem: cert.signing_key.serialize_pem() }
    }

    fn write(dir: &Path, pair: &Pair) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        // Replaced by rename, as renewal tools do, so a reader never sees half a file.
        for (path, text) in [(&cert, &pair.cert_pem), (&key, &pair.key_pem)] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        (cert, key)
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    fn served(certificate: &Certificate) -> Vec<u8> {
        certificate.current().end_entity_cert().unwrap().to_vec()
    }

    fn der(pair: &Pair) -> Vec<u8> {
        CertificateDer::from_pem_slice(pair.cert_pem.as_bytes()).unwrap().to_vec()
    }

    #[test]
    fn a_changed_certificate_is_served_from_the_next_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let first = self_signed("first.example");
        let (cert, key) = write(dir.path(), &first);
        let certificate = Certificate::load(&cert, &key, provider()).unwrap();
        assert_eq!(served(&certificate), der(&first));
        let second = self_signed("second.example");
        write(dir.path(), &second);
        assert_eq!(served(&certificate), der(&second));
        // Rewritten in place (same inode) works as well as a rename.
        let third = self_signed("third.example");
        std::fs::write(&cert, &third.cert_pem).unwrap();
        std::fs::write(&key, &third.key_pem).unwrap();
        assert_eq!(served(&certificate), der(&third));
    }

    #[test]
    fn a_replacement_that_does_not_load_keeps_the_certificate_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let first = self_signed("first.example");
        let (cert, key) = write(dir.path(), &first);
        let certificate = Certificate::load(&cert, &key, provider()).unwrap();
        // A new certificate whose key has not arrived yet: the pair does not match.
        let second = self_signed("second.example");
        std::fs::write(&cert, &second.cert_pem).unwrap();
        assert_eq!(served(&certificate), der(&first));
        // Half a file.
        std::fs::write(&cert, &second.cert_pem[..second.cert_pem.len() / 2]).unwrap();
        assert_eq!(served(&certificate), der(&first));
        // Gone for a moment.
        std::fs::remove_file(&cert).unwrap();
        assert_eq!(served(&certificate), der(&first));
        // Then the whole new pair lands.
        write(dir.path(), &second);
        assert_eq!(served(&certificate), der(&second));
    }

    #[test]
    fn the_start_refuses_files_that_are_not_a_certificate_and_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (self_signed("a.example"), self_signed("b.example"));
        let (cert, key) = write(dir.path(), &a);
        std::fs::write(&key, &b.key_pem).unwrap();
        let error = format!("{:#}", Certificate::load(&cert, &key, provider()).unwrap_err());
        assert!(error.contains("do not make a certificate and its key"), "{error}");

        std::fs::write(&cert, "not pem").unwrap();
        let error = format!("{:#}", Certificate::load(&cert, &key, provider()).unwrap_err());
        assert!(error.contains("no PEM CERTIFICATE block"), "{error}");

        let missing = dir.path().join("missing.pem");
        assert!(Certificate::load(&missing, &key, provider()).is_err());
    }

    #[test]
    fn files_over_the_bound_are_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_PEM_BYTES + 1).unwrap();
        let error = format!("{:#}", read_bounded(&big).unwrap_err());
        assert!(error.contains("larger than"), "{error}");
        file.set_len(MAX_PEM_BYTES).unwrap();
        assert_eq!(read_bounded(&big).unwrap().len() as u64, MAX_PEM_BYTES);
    }
}
