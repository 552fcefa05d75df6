//! The audit page's filter: read from and written to the page's URL (the
//! filter form is a plain GET form), its choices, and its times.

use shared::AuditRecord;

use crate::types::AuditFilter;

/// Where a filter keeps one of its fields.
pub type FilterSlot = fn(&mut AuditFilter) -> &mut String;

/// The filter's fields as the URL and the form name them, with their slots.
const FIELDS: [(&str, FilterSlot); 7] = [
    ("actor", |f| &mut f.actor),
    ("verb", |f| &mut f.verb),
    ("target", |f| &mut f.target),
    ("outcome", |f| &mut f.outcome),
    ("since", |f| &mut f.since),
    ("until", |f| &mut f.until),
    ("cursor", |f| &mut f.cursor),
];

/// The host and filter a URL's query asks for (`get` reads one parameter);
/// absent and empty parameters filter nothing.
pub fn audit_filter_from(get: impl Fn(&str) -> Option<String>) -> (Option<String>, AuditFilter) {
    let mut f = AuditFilter::default();
    for (name, slot) in FIELDS {
        *slot(&mut f) = get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    }
    (get("host").filter(|h| !h.is_empty()), f)
}

/// The query string (without `?`) that asks for `host` and `f`; empty fields
/// are left out.
pub fn audit_query(host: &str, f: &AuditFilter) -> String {
    let mut f = f.clone();
    let mut out = String::new();
    let mut pair = |k: &str, v: &str| {
        if v.is_empty() {
            return;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        shared::api::encode_component(v, &mut out);
    };
    pair("host", host);
    for (name, slot) in FIELDS {
        pair(name, slot(&mut f));
    }
    out
}

/// A time bound for the sidecar: a `datetime-local` value
/// (`2026-05-01T12:30`, with or without seconds) is read as UTC, the zone of
/// the times the page shows; anything else (unix seconds, RFC 3339 with a
/// zone) goes as it is, for the sidecar to accept or refuse.
pub fn utc_time(v: &str) -> String {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let minutes = b.len() >= 16
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16);
    if !minutes {
        return v.to_owned();
    }
    match &b[16..] {
        [] => format!("{v}:00Z"),
        [b':', rest @ ..] if rest.len() >= 2 && digits(17..19) => {
            let frac = &rest[2..];
            if frac.is_empty() || (frac[0] == b'.' && frac.len() > 1 && frac[1..].iter().all(u8::is_ascii_digit)) {
                format!("{v}Z")
            } else {
                v.to_owned()
            }
        }
        _ => v.to_owned(),
    }
}

/// The actors to suggest: the signed-in user and everyone in `records`,
/// sorted, each once.
pub fn known_actors(records: &[AuditRecord], me: &str) -> Vec<String> {
    let mut out: Vec<String> = records.iter().filter_map(|r| r.actor.clone()).chain([me.to_owned()]).collect();
    out.retain(|a| !a.is_empty());
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_round_trips_through_the_url() {
        let f = AuditFilter {
            actor: "ops bob".into(),
            verb: "restart".into(),
            outcome: "denied".into(),
            since: "2026-05-01T12:30".into(),
            cursor: "42".into(),
            ..Default::default()
        };
        let q = audit_query("h&1", &f);
        assert_eq!(q, "host=h%261&actor=ops%20bob&verb=restart&outcome=denied&since=2026-05-01T12%3A30&cursor=42");
        let params: Vec<(String, String)> = q
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.replace("%20", " ").replace("%26", "&").replace("%3A", ":"))
            })
            .collect();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(audit_filter_from(get), (Some("h&1".into()), f));
        // What a plain GET form sends: every field, most of them empty.
        let form = |k: &str| Some(if k == "verb" { " pull ".to_owned() } else { String::new() });
        assert_eq!(audit_filter_from(form), (None, AuditFilter { verb: "pull".into(), ..Default::default() }));
        assert_eq!(audit_query("", &AuditFilter::default()), "");
    }

    #[test]
    fn datetime_local_values_are_read_as_utc() {
        assert_eq!(utc_time("2026-05-01T12:30"), "2026-05-01T12:30:00Z");
        assert_eq!(utc_time("2026-05-01T12:30:15"), "2026-05-01T12:30:15Z");
        assert_eq!(utc_time("2026-05-01T12:30:15.250"), "2026-05-01T12:30:15.250Z");
        for as_is in ["2026-05-01T12:30:00Z", "2026-05-01T12:30:00+02:00", "1700000000", "yesterday", "2026-05-01T12:3"]
        {
            assert_eq!(utc_time(as_is), as_is);
        }
    }

    #[test]
    fn actors_to_suggest() {
        let rec = |actor: Option<&str>| AuditRecord {
            seq: 1,
            time: String::new(),
            request_id: String::new(),
            client: String::new(),
            actor: actor.map(String::from),
            verb: "restart".into(),
            target: None,
            target_name: None,
            params: Default::default(),
            outcome: shared::Outcome::Ok,
            message: None,
            duration_ms: 0,
            prev: String::new(),
            mac: None,
        };
        let records = [rec(Some("bob")), rec(None), rec(Some("alice")), rec(Some("bob")), rec(Some(""))];
        assert_eq!(known_actors(&records, "carol"), ["alice", "bob", "carol"]);
        assert_eq!(known_actors(&[], "alice"), ["alice"]);
    }
}
