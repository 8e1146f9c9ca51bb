//! Manifests and indexes as a client pushes them (ParsedManifest::parse under each
//! Content-Type the registry distinguishes) and as `slipway scan` reads them from other
//! registries (the scanner's documents, platform selection, `platform_images`).
//!
//! An accepted manifest is re-encoded from what the registry kept and parsed again: the
//! second reading must agree with the first, or what the registry stores, serves and
//! lists as referrers depends on the spelling of the push.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use slipway_oci::media_type::{self, MANIFEST_TYPES, is_index};
use slipway_oci::{Descriptor, ParsedManifest, platform_images};
use slipway_scanner::image::{ConfigDocument, IndexDocument, ManifestDocument, Platform, select_platform};

const CONTENT_TYPES: [Option<&str>; 9] = [
    None,
    Some(media_type::OCI_MANIFEST),
    Some(media_type::OCI_INDEX),
    Some(media_type::DOCKER_MANIFEST),
    Some(media_type::DOCKER_MANIFEST_LIST),
    Some(media_type::DOCKER_MANIFEST_V1_SIGNED),
    Some("application/json"),
    Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
    Some(""),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    registry(body, content_type);
    scanner(body);
});

fn registry(body: &[u8], content_type: Option<&str>) {
    let Ok(manifest) = ParsedManifest::parse(body, content_type) else { return };
    let header = content_type.map(|ct| ct.split(';').next().unwrap_or_default().trim()).filter(|ct| !ct.is_empty());
    // Unknown fields are skipped unchecked (serde does not decode their escapes), so a
    // manifest may be accepted that a full JSON reading refuses (a lone surrogate `\ud800`
    // in an annotation it ignores): check the raw document when it reads.
    if let Ok(raw) = serde_json::from_slice::<Value>(body) {
        assert_eq!(raw["schemaVersion"], json!(2), "only schema 2 is accepted");
        if is_index(&manifest.media_type) {
            assert!(raw.get("manifests").is_some_and(Value::is_array), "an index without a manifests array");
        }
    }
    assert!(!manifest.media_type.is_empty());
    assert_ne!(manifest.media_type, media_type::DOCKER_MANIFEST_V1);
    assert_ne!(manifest.media_type, media_type::DOCKER_MANIFEST_V1_SIGNED);
    // A Content-Type that names a manifest kind is the kind stored.
    if let Some(header) = header.filter(|h| MANIFEST_TYPES.contains(h)) {
        assert_eq!(manifest.media_type, header, "stored under another type than the request's Content-Type");
    }
    if !is_index(&manifest.media_type) {
        assert!(manifest.config.is_some(), "an image manifest without a config");
    }
    let distributable = manifest.layers.iter().filter(|l| !media_type::is_non_distributable(&l.media_type)).count();
    assert_eq!(manifest.required_blobs().count(), usize::from(manifest.config.is_some()) + distributable);

    let descriptor = |d: &Descriptor| json!({"mediaType": d.media_type, "digest": d.digest.to_string(), "size": d.size});
    let mut again = json!({"schemaVersion": 2, "mediaType": manifest.media_type});
    if let Some(artifact_type) = &manifest.artifact_type {
        again["artifactType"] = json!(artifact_type);
    }
    if let Some(config) = &manifest.config {
        again["config"] = descriptor(config);
    }
    again["layers"] = manifest.layers.iter().map(descriptor).collect();
    if is_index(&manifest.media_type) || !manifest.manifests.is_empty() {
        again["manifests"] = manifest.manifests.iter().map(descriptor).collect();
    }
    if let Some(subject) = &manifest.subject {
        again["subject"] = descriptor(subject);
    }
    if let Some(annotations) = &manifest.annotations {
        again["annotations"] = annotations.clone();
    }
    let bytes = serde_json::to_vec(&again).expect("JSON");
    let second = ParsedManifest::parse(&bytes, content_type)
        .unwrap_or_else(|e| panic!("the re-encoded manifest is refused: {e}\n{}", String::from_utf8_lossy(&bytes)));
    assert_eq!(second.media_type, manifest.media_type);
    assert_eq!(second.artifact_type, manifest.artifact_type);
    assert_eq!(second.config, manifest.config);
    assert_eq!(second.layers, manifest.layers);
    assert_eq!(second.manifests, manifest.manifests);
    assert_eq!(second.subject, manifest.subject);
    assert_eq!(second.annotations, manifest.annotations);
}

fn scanner(body: &[u8]) {
    for (_, label) in platform_images(body) {
        // os/architecture[/variant], never for an attestation's unknown/unknown.
        assert!(label.len() >= 3 && !label.starts_with("unknown/"), "{label:?}");
    }
    if let Ok(document) = serde_json::from_slice::<ManifestDocument>(body) {
        let _ = slipway_scanner::image::is_index(&document);
        for layer in &document.layers {
            let _ = slipway_scanner::image::parse_digest(&layer.digest);
        }
    }
    if let Ok(index) = serde_json::from_slice::<IndexDocument>(body) {
        for wanted in [None, Some("linux/arm64/v8"), Some("linux/amd64"), Some("windows/amd64")] {
            let wanted: Option<Platform> = wanted.map(|w| w.parse().expect("a valid platform"));
            if let Ok(entry) = select_platform(&index.manifests, wanted.as_ref()) {
                let platform = Platform::from(entry.platform.as_ref().expect("only entries with a platform are chosen"));
                assert_ne!(platform.os, "unknown", "an attestation was chosen");
                if let Some(wanted) = &wanted {
                    assert!(wanted.accepts(&platform), "{wanted} chose {platform}");
                }
            }
        }
    }
    if let Ok(config) = serde_json::from_slice::<ConfigDocument>(body)
        && let Some(platform) = config.platform()
    {
        // A config's platform prints as os/architecture[/variant]; it reads back when
        // its parts hold no slash (and the scanner parses `--platform` that way).
        let printed = platform.to_string();
        if ![&platform.os, &platform.architecture].iter().any(|p| p.is_empty() || p.contains('/'))
            && !platform.variant.as_deref().is_some_and(|v| v.contains('/'))
        {
            assert_eq!(printed.parse::<Platform>().ok(), Some(platform), "{printed:?}");
        }
    }
}
