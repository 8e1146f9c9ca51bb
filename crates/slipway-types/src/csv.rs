//! CSV as the store's downloads write it (RFC 4180): a value holding a comma, a quote or
//! a line break is quoted, quotes doubled; lines end with CRLF.

/// One line of values, CRLF included.
pub fn csv_line<S: AsRef<str>>(values: &[S]) -> String {
    let mut line = values.iter().map(|v| cell(v.as_ref())).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

fn cell(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_need_quotes_get_them() {
        assert_eq!(csv_line(&["a", "b c", ""]), "a,b c,\r\n");
        assert_eq!(csv_line(&["x,y", "say \"hi\"", "two\nlines"]), "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n");
    }
}
