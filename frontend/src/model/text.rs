//! Log text: ANSI colour escapes into classed pieces, plain search highlighting.

/// Case-insensitive plain-text highlighting: (matched?, piece).
pub fn highlight_plain(text: &str, q: &str) -> Vec<(bool, String)> {
    if q.is_empty() {
        return vec![(false, text.to_owned())];
    }
    let lower = text.to_lowercase();
    let ql = q.to_lowercase();
    // Lowercasing can change byte lengths outside ASCII; fall back to no highlight there.
    if lower.len() != text.len() {
        return vec![(lower.contains(&ql), text.to_owned())];
    }
    let mut out = Vec::new();
    let mut last = 0;
    for (i, _) in lower.match_indices(&ql) {
        if i < last || !text.is_char_boundary(i) || !text.is_char_boundary(i + ql.len()) {
            continue;
        }
        if i > last {
            out.push((false, text[last..i].to_owned()));
        }
        out.push((true, text[i..i + ql.len()].to_owned()));
        last = i + ql.len();
    }
    if last < text.len() {
        out.push((false, text[last..].to_owned()));
    }
    out
}

/// Splits a log line on ANSI SGR escapes into (CSS classes, text) pieces; the
/// escapes themselves are dropped, and every other control character too.
pub fn ansi_spans(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut fg: Option<u8> = None;
    let mut bold = false;
    let mut cur = String::new();
    let class = |fg: Option<u8>, bold: bool| {
        let mut c = String::from("ansi");
        if let Some(f) = fg {
            c.push_str(&format!(" fg{f}"));
        }
        if bold {
            c.push_str(" bold");
        }
        c
    };
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                let mut params = String::new();
                let mut fin = None;
                for c in chars.by_ref() {
                    if c.is_ascii_digit() || c == ';' {
                        params.push(c);
                    } else {
                        fin = Some(c);
                        break;
                    }
                }
                if fin == Some('m') {
                    if !cur.is_empty() {
                        out.push((class(fg, bold), std::mem::take(&mut cur)));
                    }
                    for p in params.split(';') {
                        match p.parse::<u8>().unwrap_or(0) {
                            0 => {
                                fg = None;
                                bold = false;
                            }
                            1 => bold = true,
                            22 => bold = false,
                            n @ 30..=37 => fg = Some(n - 30),
                            n @ 90..=97 => fg = Some(n - 90 + 8),
                            39 => fg = None,
                            _ => {}
                        }
                    }
                }
            }
            continue;
        }
        if ch.is_control() && ch != '\t' {
            continue;
        }
        cur.push(ch);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push((class(fg, bold), cur));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_is_parsed_and_dropped() {
        let spans = ansi_spans("\u{1b}[31mred\u{1b}[0m plain \u{1b}[1;32mbold green");
        assert_eq!(
            spans,
            vec![
                ("ansi fg1".to_owned(), "red".to_owned()),
                ("ansi".to_owned(), " plain ".to_owned()),
                ("ansi fg2 bold".to_owned(), "bold green".to_owned())
            ]
        );
        // Other escapes and control characters vanish; markup stays text.
        let spans = ansi_spans("<script>\u{1b}[2Kx\u{7}</script>");
        assert_eq!(spans, vec![("ansi".to_owned(), "<script>x</script>".to_owned())]);
    }

    #[test]
    fn plain_highlight() {
        assert_eq!(
            highlight_plain("Error: BAD error", "error"),
            vec![(true, "Error".into()), (false, ": BAD ".into()), (true, "error".into())]
        );
        assert_eq!(highlight_plain("abc", ""), vec![(false, "abc".into())]);
    }
}
