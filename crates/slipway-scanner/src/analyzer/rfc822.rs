//! The `Field: value` paragraphs of dpkg status files and Python core metadata.

use crate::ScanError;

/// One paragraph's fields, in order; continuation lines are joined with `\n`.
pub(super) type Paragraph<'a> = Vec<(&'a str, String)>;

/// Splits `text` into blank-line separated paragraphs. With `stop_after_first`, parsing
/// ends at the first blank line (a Python METADATA body is free text, not fields).
pub(super) fn paragraphs<'a>(text: &'a str, what: &'static str, stop_after_first: bool) -> Result<Vec<Paragraph<'a>>, ScanError> {
    let mut all = Vec::new();
    let mut current: Paragraph<'a> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                all.push(std::mem::take(&mut current));
                if stop_after_first {
                    return Ok(all);
                }
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.last_mut() else {
                return Err(malformed(what, number, "continuation line before any field"));
            };
            value.push('\n');
            value.push_str(line.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(malformed(what, number, "line is neither a field nor a continuation"));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(malformed(what, number, "bad field name"));
        }
        current.push((name, value.trim().to_owned()));
    }
    if !current.is_empty() {
        all.push(current);
    }
    Ok(all)
}

/// The first value of a field, matched case-insensitively as both formats specify.
pub(super) fn field<'p>(paragraph: &'p Paragraph<'_>, name: &str) -> Option<&'p str> {
    paragraph.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
}

fn malformed(what: &'static str, index: usize, problem: &str) -> ScanError {
    ScanError::Malformed { what, detail: format!("line {}: {problem}", index + 1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_continuations_and_paragraphs() {
        let text = "Package: a\nDescription: one\n two\n\n\nPackage: b\n";
        let all = paragraphs(text, "test", false).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(field(&all[0], "description"), Some("one\ntwo"));
        assert_eq!(field(&all[1], "Package"), Some("b"));
        assert_eq!(paragraphs(text, "test", true).unwrap().len(), 1);
    }

    #[test]
    fn garbage_is_an_error_with_a_line_number() {
        let err = paragraphs("Package: a\nthis is not a field\n", "dpkg status", false).unwrap_err();
        assert_eq!(err.to_string(), "malformed dpkg status: line 2: line is neither a field nor a continuation");
        assert!(paragraphs(" leading continuation\n", "x", false).is_err());
    }
}
