//! Routing of `/v2/...` paths (slipway-registry's Route::parse): names may have any depth
//! and hold components called `blobs`, `manifests`, `tags` or `uploads`, so routes are told
//! apart by their fixed suffix. Any route parsed prints back to a path with the same
//! route; and every route built from a valid repository name and a valid reference,
//! digest or upload id is recognised as exactly that route, with that name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_oci::{Digest, Reference, RepoName};
use slipway_registry::Route;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    if let Some(route) = Route::parse(text) {
        let printed = path_of(&route);
        assert_eq!(Route::parse(&printed).as_ref(), Some(&route), "{text:?} printed as {printed:?}");
        assert_eq!(route.name().is_none(), matches!(route, Route::Base | Route::Catalog));
        if let Some(name) = route.name() {
            assert!(text.starts_with(name), "the name {name:?} is not the start of {text:?}");
        }
    }

    // Built routes: the input's first line is a name, the second a tag or digest (and,
    // as an upload id, anything without a slash).
    let mut lines = text.split('\n');
    let (Some(name), Some(tail)) = (lines.next(), lines.next()) else { return };
    if name.parse::<RepoName>().is_err() {
        return;
    }
    let mut expected = vec![Route::Tags { name }, Route::UploadStart { name }];
    if !tail.is_empty() && !tail.contains('/') {
        expected.push(Route::Upload { name, id: tail });
    }
    if tail.parse::<Reference>().is_ok() {
        expected.push(Route::Manifest { name, reference: tail });
    }
    if tail.parse::<Digest>().is_ok() {
        expected.push(Route::Blob { name, digest: tail });
        expected.push(Route::Referrers { name, digest: tail });
    }
    for route in expected {
        let path = path_of(&route);
        assert_eq!(Route::parse(&path).as_ref(), Some(&route), "{path:?}");
    }
});

fn path_of(route: &Route<'_>) -> String {
    match route {
        Route::Base => String::new(),
        Route::Catalog => "_catalog".to_owned(),
        Route::Tags { name } => format!("{name}/tags/list"),
        Route::Manifest { name, reference } => format!("{name}/manifests/{reference}"),
        Route::Blob { name, digest } => format!("{name}/blobs/{digest}"),
        Route::UploadStart { name } => format!("{name}/blobs/uploads/"),
        Route::Upload { name, id } => format!("{name}/blobs/uploads/{id}"),
        Route::Referrers { name, digest } => format!("{name}/referrers/{digest}"),
    }
}
