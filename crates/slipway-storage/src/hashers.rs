//! Running hashes of the uploads this process is receiving.

use std::collections::HashMap;
use std::sync::Mutex;

use slipway_oci::{Algorithm, Hasher};

use crate::UploadId;

/// The hash of an upload's first `len` bytes, kept between chunks so that sealing an upload
/// on the replica that received it needs no second pass over the data.
#[derive(Default)]
pub(crate) struct RunningHashes {
    by_upload: Mutex<HashMap<UploadId, (u64, Hasher)>>,
}

impl RunningHashes {
    /// The hasher to continue at `offset`, if this process saw every byte before it.
    pub fn resume(&self, upload: &UploadId, offset: u64, algorithm: Algorithm) -> Option<Hasher> {
        if offset == 0 {
            self.forget(upload);
            return Some(algorithm.hasher());
        }
        let mut map = self.by_upload.lock().expect("hash map lock");
        match map.remove(upload) {
            Some((len, hasher)) if len == offset => Some(hasher),
            _ => None,
        }
    }

    pub fn store(&self, upload: &UploadId, len: u64, hasher: Hasher) {
        self.by_upload.lock().expect("hash map lock").insert(upload.clone(), (len, hasher));
    }

    /// The finished hash of exactly `len` bytes in the wanted algorithm, if kept.
    pub fn take(&self, upload: &UploadId, len: u64, algorithm: Algorithm) -> Option<slipway_oci::Digest> {
        let (seen, hasher) = self.by_upload.lock().expect("hash map lock").remove(upload)?;
        let digest = hasher.finish();
        (seen == len && digest.algorithm() == algorithm).then_some(digest)
    }

    pub fn forget(&self, upload: &UploadId) {
        self.by_upload.lock().expect("hash map lock").remove(upload);
    }
}
