//! Text from images, registries and feeds on its way to a terminal.
//!
//! An image chooses its `os-release`, its package names and versions, its platform
//! strings, and a registry its error messages: printed raw, an escape sequence among them
//! could clear the screen, move the cursor over the real results or retitle the window
//! (a fake "No vulnerabilities found."). Every human-readable output of `slipway scan`
//! passes such text through [`printable`]; the JSON formats are escaped by their
//! serializer.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every character that a terminal would act on rather than show written
/// out: C0 controls (ESC, CR, LF, BS, TAB...) and DEL as `\x1b`, C1 controls (the
/// one-byte CSI `\u{9b}`...) and the bidirectional overrides that reorder what is
/// shown as `\u{202e}`. A backslash stays as it is: the escapes are for reading, not
/// for parsing back.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c) {
            shown.push(c);
        } else if c.is_ascii() {
            let _ = write!(shown, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(shown, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(shown)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_out() {
        assert!(matches!(printable("Debian GNU/Linux 12 (bookworm)"), Cow::Borrowed(_)));
        assert_eq!(printable("a\x1b[2J\x1b[Hb"), "a\\x1b[2J\\x1b[Hb");
        assert_eq!(printable("cr\rlf\nbs\x08tab\tdel\x7fnul\0"), "cr\\x0dlf\\x0abs\\x08tab\\x09del\\x7fnul\\x00");
        assert_eq!(printable("csi\u{9b}2J"), "csi\\u{9b}2J");
        assert_eq!(printable("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(printable("ünïcode ok"), "ünïcode ok");
    }
}
