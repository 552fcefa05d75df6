//! Text from containers: log lines (ANSI colour escapes into classed pieces,
//! plain search highlighting), and the format characters (bidi overrides,
//! zero-width characters, …) that could spoof names, labels, environment
//! values, image names and log lines, made visible
//! ([`shared::text::neutralise`]) before anything is shown.

use shared::text::{neutralise_in_place as n, push_neutralised};
use shared::{ContainerDetail, ContainerSummary};

/// A container's text fields with every format character made visible.
/// Applied where the console receives containers from a sidecar, so every
/// view (overview, detail, network, app logs) shows the neutralised text.
pub fn neutralise_container(c: &mut ContainerSummary) {
    n(&mut c.name);
    n(&mut c.image);
    n(&mut c.image_id);
    n(&mut c.status);
    n(&mut c.restart_policy);
    for s in [&mut c.compose_project, &mut c.compose_service].into_iter().flatten() {
        n(s);
    }
    for net in &mut c.networks {
        n(&mut net.name);
    }
    for m in &mut c.mounts {
        n(&mut m.kind);
        n(&mut m.destination);
        for s in [&mut m.name, &mut m.source].into_iter().flatten() {
            n(s);
        }
    }
    if c.labels.iter().any(|(k, v)| shared::text::neutralise(k) != *k || shared::text::neutralise(v) != *v) {
        c.labels = std::mem::take(&mut c.labels)
            .into_iter()
            .map(|(mut k, mut v)| {
                n(&mut k);
                n(&mut v);
                (k, v)
            })
            .collect();
    }
}

/// [`neutralise_container`] and the detail's own text: environment, command,
/// the engine's error, healthcheck output.
pub fn neutralise_detail(d: &mut ContainerDetail) {
    neutralise_container(&mut d.summary);
    for e in &mut d.env {
        n(&mut e.key);
        if let Some(v) = &mut e.value {
            n(v);
        }
    }
    for a in d.entrypoint.iter_mut().chain(d.command.iter_mut()) {
        n(a);
    }
    if let Some(e) = &mut d.error {
        n(e);
    }
    for h in &mut d.healthcheck_log {
        n(&mut h.output);
    }
}

/// Plain-text highlighting, case-insensitive for ASCII letters (other
/// letters match as typed: Unicode case tables would cost the browser
/// bundle 7 KB; BENCHMARKS.md): (matched?, piece).
pub fn highlight_plain(text: &str, q: &str) -> Vec<(bool, String)> {
    if q.is_empty() {
        return vec![(false, text.to_owned())];
    }
    // ASCII lowercasing keeps every byte where it was: the matches' indices are the text's.
    let lower = text.to_ascii_lowercase();
    let ql = q.to_ascii_lowercase();
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

/// An audit record's free text (actor, target, message, parameters) made
/// safe to show on the audit page: targets and messages can name what a
/// client or a container chose.
pub fn neutralise_audit_record(r: &mut shared::AuditRecord) {
    for s in [&mut r.actor, &mut r.target, &mut r.target_name, &mut r.message].into_iter().flatten() {
        n(s);
    }
    for v in r.params.values_mut() {
        n(v);
    }
}

/// Splits a log line on ANSI SGR escapes into (CSS classes, text) pieces; the
/// escapes themselves are dropped, and every other control character too;
/// format characters (U+202E, zero-width, …) show as their escapes.
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
        push_neutralised(&mut cur, ch);
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
    fn format_characters_in_log_lines_are_made_visible() {
        let spans = ansi_spans("\u{1b}[31mok\u{202E}txt.exe\u{1b}[0m a\u{200B}b \u{2066}x\u{2069}");
        let text: String = spans.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(text, "ok\\u{202E}txt.exe a\\u{200B}b \\u{2066}x\\u{2069}");
        assert_eq!(ansi_spans("plain שלום")[0].1, "plain שלום");
    }

    #[test]
    fn containers_are_neutralised_field_by_field() {
        let mut c = crate::model::fixtures::container(
            "web",
            Some("shop\u{202E}"),
            shared::ContainerState::Running,
            shared::Health::None,
            "Up",
        );
        c.image = "nginx\u{200D}:1".into();
        c.labels.insert("owner\u{2067}".into(), "evil\u{202E}gpj.exe".into());
        c.labels.insert("plain".into(), "value".into());
        let mut d = ContainerDetail {
            summary: c,
            entrypoint: vec!["a\u{FEFF}".into()],
            command: vec!["sh".into(), "-c".into(), "echo \u{202D}".into()],
            error: Some("bad\u{2028}line".into()),
            healthcheck_log: vec![shared::HealthcheckEntry {
                start: None,
                end: None,
                exit_code: Some(0),
                output: "ok\u{061C}".into(),
            }],
            env: vec![shared::EnvVar { key: "K\u{200E}".into(), value: Some("v\u{200F}".into()), masked: false }],
        };
        neutralise_detail(&mut d);
        let json = serde_json::to_string(&d).unwrap();
        for c in
            ['\u{202E}', '\u{200D}', '\u{2067}', '\u{FEFF}', '\u{202D}', '\u{2028}', '\u{061C}', '\u{200E}', '\u{200F}']
        {
            assert!(!json.contains(c), "U+{:04X} survived: {json}", u32::from(c));
        }
        let s = &d.summary;
        assert_eq!(s.compose_project.as_deref(), Some("shop\\u{202E}"));
        assert_eq!(s.image, "nginx\\u{200D}:1");
        assert_eq!(s.labels.get("owner\\u{2067}").map(String::as_str), Some("evil\\u{202E}gpj.exe"));
        assert_eq!(s.labels.get("plain").map(String::as_str), Some("value"));
        assert_eq!(s.name, "web", "ordinary text untouched");
        assert_eq!(d.env[0].value.as_deref(), Some("v\\u{200F}"));
        assert_eq!(d.error.as_deref(), Some("bad\\u{2028}line"));
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
