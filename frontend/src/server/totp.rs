//! A second factor for local users: TOTP (RFC 6238: HMAC-SHA1, 30-second
//! steps, 6 digits), one step of clock drift either way, and no step used
//! twice (the last accepted step is kept with the user); and recovery codes,
//! each good once, kept as SHA-256 digests.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Seconds per step.
pub const STEP_S: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Recovery codes made at a time.
pub const RECOVERY_CODES: usize = 10;

/// The code for `step` (a counter, RFC 4226), of `digits` digits.
pub fn code(key: &[u8], step: u64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(key) else { return u32::MAX };
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = usize::from(h[19] & 0x0f);
    let bin = u32::from_be_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]) & 0x7fff_ffff;
    bin % 10u32.pow(digits)
}

/// The step `code` is right for at `now_s` (this step, the one before or
/// the one after), if it is later than `last` (a used step never counts again).
pub fn verify(key: &[u8], typed: &str, now_s: u64, last: Option<u64>) -> Option<u64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = now_s / STEP_S;
    let mut found = None;
    // Every candidate is computed and compared: the time taken says nothing.
    for step in [now.saturating_sub(1), now, now + 1] {
        let want = format!("{:0width$}", code(key, step, DIGITS), width = DIGITS as usize);
        let fresh = last.is_none_or(|l| step > l);
        if bool::from(want.as_bytes().ct_eq(typed.as_bytes())) && fresh && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32, upper case, without padding (what authenticator apps read).
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The `otpauth://` address an authenticator app reads (as a QR code or typed).
pub fn otpauth_uri(user: &str, secret_b32: &str) -> String {
    let user = super::super::model::url_encode(user);
    format!(
        "otpauth://totp/dockward:{user}?secret={secret_b32}&issuer=dockward&algorithm=SHA1&digits={DIGITS}&period={STEP_S}"
    )
}

/// 20 random bytes: a new TOTP key.
pub fn new_key() -> Result<Vec<u8>, String> {
    let mut k = vec![0u8; 20];
    getrandom::fill(&mut k).map_err(|e| e.to_string())?;
    Ok(k)
}

/// New recovery codes (16 base32 characters, 80 bits, shown in groups of
/// four), and their digests to keep.
pub fn new_recovery_codes() -> Result<(Vec<String>, Vec<String>), String> {
    let mut codes = Vec::new();
    for _ in 0..RECOVERY_CODES {
        let mut b = [0u8; 10];
        getrandom::fill(&mut b).map_err(|e| e.to_string())?;
        let c = base32(&b);
        codes.push(format!("{}-{}-{}-{}", &c[0..4], &c[4..8], &c[8..12], &c[12..16]));
    }
    let digests = codes.iter().map(|c| recovery_digest(c)).collect();
    Ok((codes, digests))
}

/// A recovery code's digest, whatever its case, dashes and spaces.
pub fn recovery_digest(code: &str) -> String {
    let normal: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_vectors() {
        // RFC 6238 Appendix B, SHA-1, 8 digits.
        let key = b"12345678901234567890";
        for (t, want) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(code(key, t / STEP_S, 8), want, "T = {t}");
        }
        // RFC 4226 Appendix D, 6 digits.
        assert_eq!(code(key, 0, 6), 755224);
        assert_eq!(code(key, 9, 6), 520489);
    }

    #[test]
    fn a_code_counts_once_and_only_near_its_time() {
        let key = b"12345678901234567890";
        let now = 1_700_000_000u64;
        let c = |step: u64| format!("{:06}", code(key, step, 6));
        let step = now / STEP_S;
        assert_eq!(verify(key, &c(step), now, None), Some(step));
        assert_eq!(verify(key, &c(step - 1), now, None), Some(step - 1), "a step behind");
        assert_eq!(verify(key, &c(step + 1), now, None), Some(step + 1), "a step ahead");
        assert_eq!(verify(key, &c(step - 2), now, None), None, "too old");
        assert_eq!(verify(key, &c(step), now, Some(step)), None, "replayed");
        assert_eq!(verify(key, &c(step - 1), now, Some(step)), None, "an older step after a newer one");
        assert_eq!(verify(key, &c(step + 1), now, Some(step)), Some(step + 1));
        let spaced = format!("{} {}", &c(step)[..3], &c(step)[3..]);
        assert_eq!(verify(key, &spaced, now, None), Some(step), "spaces are ignored");
        for bad in ["", "12345", "1234567", "abcdef", "12345x"] {
            assert_eq!(verify(key, bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_and_recovery_codes() {
        // RFC 4648 section 10.
        for (raw, want) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(raw.as_bytes()), want);
        }
        let (codes, digests) = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(codes[0].len(), 19);
        assert_eq!(recovery_digest(&codes[0]), digests[0]);
        assert_eq!(recovery_digest(&codes[0].to_lowercase().replace('-', " ")), digests[0], "as typed, loosely");
        assert!(!digests[0].contains(&codes[0][..4]));
        assert!(otpauth_uri("al ice", "ABC").starts_with("otpauth://totp/dockward:al%20ice?secret=ABC&issuer=dockward"));
    }
}
