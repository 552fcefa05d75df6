//! Text from containers (names, labels, environment, image names, log
//! lines) is attacker-controlled. Rendered as text it cannot inject markup,
//! but invisible *format* characters can still spoof what a person reads:
//! a right-to-left override (U+202E) makes `gpj.exe` read as `exe.jpg`,
//! zero-width characters make two different names look the same. The
//! console passes such text through [`neutralise`] before showing it.

use std::borrow::Cow;

/// Unicode's format characters (general category `Cf`, Unicode 16), plus the
/// line and paragraph separators (U+2028, U+2029), which break lines where
/// none is expected. Sorted, inclusive ranges.
const FORMAT_CHARS: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // soft hyphen
    (0x0600, 0x0605),   // Arabic number signs
    (0x061C, 0x061C),   // Arabic letter mark (bidi)
    (0x06DD, 0x06DD),   // Arabic end of ayah
    (0x070F, 0x070F),   // Syriac abbreviation mark
    (0x0890, 0x0891),   // Arabic pound/piastre mark above
    (0x08E2, 0x08E2),   // Arabic disputed end of ayah
    (0x180E, 0x180E),   // Mongolian vowel separator
    (0x200B, 0x200F),   // zero width space/non-joiner/joiner, LRM, RLM
    (0x2028, 0x202E),   // line/paragraph separator; LRE, RLE, PDF, LRO, RLO
    (0x2060, 0x2064),   // word joiner, invisible operators
    (0x2066, 0x206F),   // LRI, RLI, FSI, PDI; deprecated format characters
    (0xFEFF, 0xFEFF),   // zero width no-break space (BOM)
    (0xFFF9, 0xFFFB),   // interlinear annotation
    (0x110BD, 0x110BD), // Kaithi number sign
    (0x110CD, 0x110CD), // Kaithi number sign above
    (0x13430, 0x1343F), // Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3), // shorthand format controls
    (0x1D173, 0x1D17A), // musical symbol format controls
    (0xE0001, 0xE0001), // language tag
    (0xE0020, 0xE007F), // tag characters
];

/// Whether `c` is a format character that [`neutralise`] replaces.
pub fn is_format_char(c: char) -> bool {
    let c = u32::from(c);
    FORMAT_CHARS
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Appends `c` to `out`, a format character as its visible escape
/// (`\u{202E}`), so it neither acts nor hides.
pub fn push_neutralised(out: &mut String, c: char) {
    if is_format_char(c) {
        out.push_str(&format!("\\u{{{:04X}}}", u32::from(c)));
    } else {
        out.push(c);
    }
}

/// `s` with every format character (bidi overrides and isolates, zero-width
/// characters, other `Cf`, line/paragraph separators) replaced by its visible
/// escape, e.g. `\u{202E}`. Borrowed when there is nothing to replace.
pub fn neutralise(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_format_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        push_neutralised(&mut out, c);
    }
    Cow::Owned(out)
}

/// [`neutralise`] in place.
pub fn neutralise_in_place(s: &mut String) {
    if let Cow::Owned(n) = neutralise(s) {
        *s = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_zero_width_characters_become_visible() {
        assert_eq!(neutralise("invoice\u{202E}gpj.exe"), "invoice\\u{202E}gpj.exe");
        assert_eq!(neutralise("ad\u{200B}min"), "ad\\u{200B}min");
        for c in [
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200E}',
            '\u{200F}',
            '\u{061C}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{2028}',
            '\u{2029}',
            '\u{E0041}',
            '\u{E0001}',
            '\u{1D173}',
            '\u{0600}',
        ] {
            assert!(is_format_char(c), "U+{:04X}", u32::from(c));
            let input = format!("a{c}b");
            let n = neutralise(&input);
            assert!(!n.contains(c), "U+{:04X} survived", u32::from(c));
            assert_eq!(n, format!("a\\u{{{:04X}}}b", u32::from(c)));
        }
    }

    #[test]
    fn ordinary_text_is_untouched_and_borrowed() {
        for s in [
            "web-1",
            "postgres:16-alpine",
            "héllo wörld",
            "שלום עולם", // right-to-left letters themselves are fine
            "مرحبا",     // so is Arabic text
            "日本語 🚀 ✓",
            "tab\there",
            "",
        ] {
            assert!(matches!(neutralise(s), Cow::Borrowed(_)), "{s}");
        }
        // Neighbours of the ranges are not format characters.
        for c in [
            '\u{00AC}',
            '\u{00AE}',
            '\u{200A}',
            '\u{2027}',
            '\u{202F}',
            '\u{2065}',
            '\u{2070}',
            '\u{FEFE}',
            '\u{E0002}',
        ] {
            assert!(!is_format_char(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn in_place() {
        let mut s = String::from("x\u{2067}y");
        neutralise_in_place(&mut s);
        assert_eq!(s, "x\\u{2067}y");
    }
}
