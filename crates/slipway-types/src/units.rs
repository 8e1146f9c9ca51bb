//! Quantities as people read them, for pages and messages.

/// Bytes in decimal units, as a file manager shows them: `512 B`, `48.2 kB`, `5 MB`,
/// `1.2 GB` (one decimal, dropped when it is zero).
pub fn human_bytes(bytes: u64) -> String {
    let (value, unit) = match bytes {
        b if b >= 1_000_000_000 => (bytes as f64 / 1e9, "GB"),
        b if b >= 1_000_000 => (bytes as f64 / 1e6, "MB"),
        b if b >= 1_000 => (bytes as f64 / 1e3, "kB"),
        _ => return format!("{bytes} B"),
    };
    let text = format!("{value:.1}");
    format!("{} {unit}", text.strip_suffix(".0").unwrap_or(&text))
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_read_as_a_file_manager_shows_them() {
        for (bytes, shown) in [
            (0, "0 B"),
            (999, "999 B"),
            (1_000, "1 kB"),
            (48_213, "48.2 kB"),
            (5 * 1024 * 1024, "5.2 MB"),
            (5_000_000, "5 MB"),
            (60_000_000, "60 MB"),
            (1_234_567_890, "1.2 GB"),
        ] {
            assert_eq!(human_bytes(bytes), shown, "{bytes}");
        }
    }
}
