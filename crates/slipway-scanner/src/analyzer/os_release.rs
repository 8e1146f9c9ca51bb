//! `os-release(5)`: which distribution a layer stack is.

use super::OsRelease;

/// Where os-release lives; `etc/os-release` wins when both are files.
pub(super) const PATHS: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

/// Reads the shell-style `KEY=value` assignments; unknown lines are ignored, as the
/// format asks of readers.
pub(super) fn parse(data: &[u8]) -> OsRelease {
    let text = String::from_utf8_lossy(data);
    let mut release = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key {
            "ID" => release.id = value,
            "VERSION_ID" => release.version_id = Some(value),
            "VERSION_CODENAME" => release.version_codename = Some(value),
            "PRETTY_NAME" => release.pretty_name = Some(value),
            _ => {}
        }
    }
    if release.id.is_empty() {
        // The format's documented default.
        release.id = "linux".to_owned();
    }
    release
}

fn unquote(value: &str) -> String {
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_bookworm() {
        let release = parse(
            br#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"#,
        );
        assert_eq!(release.id, "debian");
        assert_eq!(release.version_id.as_deref(), Some("12"));
        assert_eq!(release.version_codename.as_deref(), Some("bookworm"));
        assert_eq!(release.pretty_name.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    }

    #[test]
    fn quoting_and_defaults() {
        let release = parse(b"# comment\nVERSION_ID='3.19.1'\nPRETTY_NAME=\"say \\\"hi\\\"\"\n");
        assert_eq!(release.id, "linux");
        assert_eq!(release.version_id.as_deref(), Some("3.19.1"));
        assert_eq!(release.pretty_name.as_deref(), Some("say \"hi\""));
    }
}
