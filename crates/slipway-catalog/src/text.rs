//! Text rules: field limits, URLs, Markdown rendering, and the tokeniser search uses.

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::CatalogError;

/// Lower-case alphanumeric words, the only tokens search knows. Used for documents and
/// queries alike, on both databases, so they always agree on what a word is. Plurals are
/// folded onto the singular ("databases" finds "database").
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| singular(&w.to_lowercase()).to_owned())
}

/// A deliberately light English plural folding: a trailing `s` goes from words of more
/// than three letters, unless the word ends in ss, us or is (class, status, redis).
fn singular(word: &str) -> &str {
    let keep = word.len() <= 3 || ["ss", "us", "is"].iter().any(|end| word.ends_with(end)) || !word.ends_with('s');
    if keep { word } else { &word[..word.len() - 1] }
}

/// `text` as search indexes it: its words, space-separated.
pub fn tokenised(text: &str) -> String {
    words(text).collect::<Vec<_>>().join(" ")
}

/// Words worth offering as spelling corrections: at least three letters, no digits
/// (product numbers and versions are never corrected).
pub fn vocabulary<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    texts.into_iter().flat_map(words).filter(|w| w.len() >= 3 && !w.bytes().any(|b| b.is_ascii_digit()) && seen.insert(w.clone())).collect()
}

/// A single-line field: trimmed, `min..=max` characters, no control characters.
pub fn line(field: &str, value: &str, min: usize, max: usize) -> Result<String, CatalogError> {
    let value = value.trim();
    let count = value.chars().count();
    if count < min {
        return Err(invalid(field, if min == 1 { "is required".into() } else { format!("needs at least {min} characters") }));
    }
    if count > max {
        return Err(invalid(field, format!("is {count} characters long; at most {max} are allowed")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must be a single line of text".into()));
    }
    Ok(value.to_owned())
}

/// A multi-line field (Markdown or plain): at most `max` characters; newlines and tabs are
/// the only control characters kept.
pub fn multiline(field: &str, value: &str, max: usize) -> Result<String, CatalogError> {
    let value = value.trim().replace("\r\n", "\n");
    let count = value.chars().count();
    if count > max {
        return Err(invalid(field, format!("is {count} characters long; at most {max} are allowed")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(invalid(field, "contains control characters".into()));
    }
    Ok(value)
}

/// An absolute http(s) URL; anything else (`javascript:`, `data:`, relative) is refused.
pub fn web_url(field: &str, value: &str, required: bool) -> Result<String, CatalogError> {
    let value = line(field, value, 0, 500)?;
    if value.is_empty() {
        return if required { Err(invalid(field, "is required".into())) } else { Ok(value) };
    }
    match url::Url::parse(&value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u.to_string()),
        _ => Err(invalid(field, format!("{value:?} is not an http(s) URL"))),
    }
}

pub fn email(field: &str, value: &str, required: bool) -> Result<String, CatalogError> {
    let value = line(field, value, 0, 254)?;
    if value.is_empty() && !required {
        return Ok(value);
    }
    slipway_auth::check_email(&value).map_err(|_| invalid(field, format!("{value:?} is not an email address")))?;
    Ok(value)
}

pub fn phone(value: &str) -> Result<String, CatalogError> {
    let value = line("phone", value, 1, 32)?;
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let allowed = value.chars().all(|c| c.is_ascii_digit() || " +()-./".contains(c));
    if !allowed || digits < 6 {
        return Err(invalid("phone", format!("{value:?} is not a phone number (digits, spaces, + ( ) - . / only)")));
    }
    Ok(value)
}

/// A lower-case identifier used in URLs: `[a-z0-9]` words joined by single hyphens.
pub fn slug(field: &str, value: &str, max: usize) -> Result<String, CatalogError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value.split('-').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(invalid(field, format!("{value:?} must be lower-case letters and digits joined by hyphens, at most {max} characters")))
    }
}

/// The slug a name suggests: "Nimbus DB 7" becomes `nimbus-db-7`.
pub fn slugify(name: &str) -> String {
    let slug: Vec<String> =
        name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_ascii_lowercase).collect();
    let mut slug = slug.join("-");
    slug.truncate(64);
    slug.trim_end_matches('-').to_owned()
}

pub fn invalid(field: &str, message: String) -> CatalogError {
    CatalogError::Invalid(format!("{}: {message}", field.replace('_', " ")))
}

/// Legal-form words a name may end with, which say nothing of who it is ("Docker, Inc."
/// imitates "Docker").
const LEGAL_SUFFIXES: [&str; 12] = ["inc", "llc", "ltd", "limited", "gmbh", "corp", "corporation", "co", "company", "sa", "ag", "bv"];

/// Whether two publisher names read alike: equal once case, spacing, punctuation and
/// legal-form endings are dropped and look-alike characters (Cyrillic `о`, digit `0`, `rn`
/// for `m`, Cherokee `Ꭰ`...) are mapped to one skeleton by Unicode's confusables table
/// (UTS #39).
pub fn names_look_alike(a: &str, b: &str) -> bool {
    name_keys(a).iter().zip(name_keys(b).iter()).any(|(x, y)| x == y)
}

/// A name's two folds. The skeleton maps some capitals to other letters (`I` to `l`) and
/// some lower-case letters to characters with no lower case of their own (Cherokee `ꭰ` to
/// small capital `ᴅ`), so no one order of folding case and skeleton catches every look-alike:
/// the lower-cased skeleton of the lower-cased name, and that of the name as written.
fn name_keys(name: &str) -> [String; 2] {
    use unicode_security::confusable_detection::skeleton;
    let fold = |text: &str| -> String { skeleton(text).flat_map(char::to_lowercase).collect() };
    let folds: [&dyn Fn(&str) -> String; 2] = [&|t| fold(&t.to_lowercase()), &fold];
    folds.map(|f| {
        let mut words: Vec<String> = name.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(f).collect();
        while words.len() > 1 && words.last().is_some_and(|w| LEGAL_SUFFIXES.iter().any(|s| f(s) == *w)) {
            words.pop();
        }
        words.concat().chars().filter(|c| c.is_alphanumeric()).collect()
    })
}

/// Markdown rendered to HTML and sanitised: raw HTML is filtered to a safe subset, and
/// links keep only http, https and mailto URLs (so `javascript:` links lose their href).
pub fn markdown_html(markdown: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    // Built once: a builder is a few hundred hashed allocations, more than cleaning a
    // product description costs.
    static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
        let mut builder = ammonia::Builder::default();
        builder.url_schemes(["http", "https", "mailto"].into()).link_rel(Some("noopener noreferrer nofollow"));
        builder
    });
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH);
    let mut unsafe_html = String::new();
    html::push_html(&mut unsafe_html, parser);
    SANITIZER.clean(&unsafe_html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 18 item 9: names that read like a verified publisher's are told.
    #[test]
    fn look_alike_names_are_told() {
        for imitation in [
            "docker",
            "DOCKER",
            "Docker, Inc.",
            "Docker Inc",
            "D o c k e r",
            "D0cker",
            "Dоcker",
            "Docker GmbH",
            "docker.",
            "Ꭰocker",
            "DOCKER INC",
        ] {
            assert!(names_look_alike(imitation, "Docker"), "{imitation:?}");
        }
        for own in ["Dockyard", "Docker Tools", "Dock", "Inc", "Dockers"] {
            assert!(!names_look_alike(own, "Docker"), "{own:?}");
        }
        assert!(names_look_alike("Nimbus  Data Ltd.", "Nimbus Data"));
        assert!(names_look_alike("rnodern", "Modern"), "rn reads as m");
        assert!(names_look_alike("DIGITAL", "digital") && names_look_alike("Ιnc Labs", "Inc Labs"), "Greek Ι");
    }

    #[test]
    fn words_are_lower_case_alphanumeric() {
        assert_eq!(tokenised("Nimbus-DB 7.2: the <b>Fast</b> DB!"), "nimbus db 7 2 the b fast b db");
        assert_eq!(tokenised("Databases, caches, redis, class, status, aws"), "database cache redis class status aws");
        assert_eq!(tokenised("Ünïcode café"), "ünïcode café");
    }

    #[test]
    fn markdown_is_sanitised() {
        let html = markdown_html("[click](javascript:alert(1)) <script>alert(2)</script> <img src=x onerror=alert(3)> **bold**");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        let link = markdown_html("[docs](https://example.com/docs)");
        assert!(link.contains(r#"href="https://example.com/docs""#) && link.contains("noopener"), "{link}");
    }

    #[test]
    fn fields_are_checked() {
        assert!(line("name", "  ", 1, 10).is_err());
        assert!(line("short description", &"x".repeat(141), 1, 140).unwrap_err().to_string().contains("141 characters"));
        assert!(line("name", "a\u{7}b", 1, 10).is_err());
        assert!(web_url("support url", "javascript:alert(1)", true).is_err());
        assert!(web_url("support url", "https://example.com/help", true).is_ok());
        assert!(phone("+1 (555) 010-2000").is_ok());
        assert!(phone("call me").is_err());
        assert_eq!(slugify("Nimbus DB 7"), "nimbus-db-7");
        assert!(slug("slug", "Bad_Slug", 64).is_err());
    }
}
