//! RubyGems: the installed specifications under a gem home's `specifications/`.

use super::{Ecosystem, FoundPackage};
use crate::ScanError;

pub(super) fn is_spec(path: &str) -> bool {
    path.ends_with(".gemspec") && (path.contains("/specifications/") || path.starts_with("specifications/"))
}

/// Reads `s.name` and `s.version` as RubyGems writes them (`"x".freeze`, `%q{x}`), and
/// falls back on the `NAME-VERSION.gemspec` file name for the version.
pub(super) fn parse(path: &str, data: &[u8]) -> Result<FoundPackage, ScanError> {
    let text = String::from_utf8_lossy(data);
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(value) = assignment(line, ".name") {
            name.get_or_insert(value);
        } else if let Some(value) = assignment(line, ".version") {
            version.get_or_insert(value);
        }
    }
    let file_name = path.rsplit('/').next().unwrap_or(path).trim_end_matches(".gemspec");
    let version = version.or_else(|| file_name.rsplit_once('-').map(|(_, version)| version.to_owned()));
    match (name, version) {
        (Some(name), Some(version)) => Ok(FoundPackage::new(Ecosystem::RubyGems, name, version)),
        _ => Err(ScanError::Malformed { what: "gemspec", detail: "no name or version".to_owned() }),
    }
}

/// The quoted value of `<receiver><field> = <literal>`.
fn assignment(line: &str, field: &str) -> Option<String> {
    let (receiver, value) = line.split_once('=')?;
    if !receiver.trim_end().ends_with(field) || value.starts_with('=') {
        return None;
    }
    let value = value.trim();
    let value = value.strip_prefix("Gem::Version.new(").unwrap_or(value);
    let literal = if let Some(rest) = value.strip_prefix("%q{") {
        rest.split('}').next()?
    } else {
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        value[1..].split(quote).next()?
    };
    (!literal.is_empty()).then(|| literal.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_gemspec() {
        let spec = br#"# -*- encoding: utf-8 -*-
# stub: rack 3.0.8 ruby lib

Gem::Specification.new do |s|
  s.name = "rack".freeze
  s.version = "3.0.8".freeze

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.authors = ["Leah Neukirchen".freeze]
end
"#;
        let path = "usr/local/bundle/specifications/rack-3.0.8.gemspec";
        assert!(is_spec(path));
        let package = parse(path, spec).unwrap();
        assert_eq!((package.name.as_str(), package.version.as_str()), ("rack", "3.0.8"));
    }

    #[test]
    fn old_style_and_file_name_fallback() {
        let spec = b"Gem::Specification.new do |s|\n  s.name = %q{json}\nend\n";
        let package = parse("specifications/default/json-2.6.3.gemspec", spec).unwrap();
        assert_eq!((package.name.as_str(), package.version.as_str()), ("json", "2.6.3"));
        assert!(parse("specifications/x-1.gemspec", b"nothing here").is_err());
        assert!(!is_spec("app/rack.gemspec"));
    }
}
