//! A certificate's identity: the SHA-256 of its DER encoding, written
//! `sha256:` and 64 lowercase hex digits.

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    #[error(
        "a fingerprint is `sha256:` and 64 hex digits (`dockward-sidecar tls fingerprint` prints it); got an empty one"
    )]
    Empty,
    #[error("a fingerprint is `sha256:` and 64 hex digits; {0:?} is not a SHA-256 fingerprint (other digests are not accepted)")]
    Algorithm(String),
    #[error(
        "a fingerprint is `sha256:` and 64 hex digits (colons between pairs allowed); got {0} hex digits or characters that are not hex"
    )]
    Malformed(usize),
}

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(cert_der: &[u8]) -> Self {
        Self(Sha256::digest(cert_der).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = FingerprintError;

    /// `sha256:<64 hex>`, the bare 64 hex digits, or OpenSSL's
    /// `AB:CD:…` (32 pairs); any case. Nothing else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(FingerprintError::Empty);
        }
        let hex_part = match s.split_once(':') {
            Some((alg, rest)) if !alg.bytes().all(|b| b.is_ascii_hexdigit()) || alg.len() != 2 => {
                if alg.eq_ignore_ascii_case("sha256") || alg.eq_ignore_ascii_case("sha-256") {
                    rest
                } else {
                    let shown: String = alg.chars().take(16).collect();
                    return Err(FingerprintError::Algorithm(shown));
                }
            }
            _ => s,
        };
        let digits: String = if hex_part.contains(':') {
            // OpenSSL's form: every part exactly two digits.
            if !hex_part.split(':').all(|p| p.len() == 2) {
                return Err(FingerprintError::Malformed(hex_part.len()));
            }
            hex_part.split(':').collect()
        } else {
            hex_part.to_owned()
        };
        let mut out = [0u8; 32];
        if digits.len() != 64 {
            return Err(FingerprintError::Malformed(digits.len()));
        }
        hex::decode_to_slice(&digits, &mut out).map_err(|_| FingerprintError::Malformed(digits.len()))?;
        Ok(Self(out))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_that_name_the_same_certificate() {
        let fp = Fingerprint::of(b"certificate");
        let text = fp.to_string();
        assert!(text.starts_with("sha256:") && text.len() == 7 + 64, "{text}");
        let bare = &text[7..];
        let openssl: Vec<String> =
            bare.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).to_uppercase()).collect();
        for form in [text.clone(), bare.to_owned(), format!("SHA256:{}", bare.to_uppercase()), openssl.join(":")] {
            assert_eq!(form.parse::<Fingerprint>(), Ok(fp), "{form}");
        }
    }

    #[test]
    fn bad_fingerprints_say_what_is_wrong() {
        assert_eq!("".parse::<Fingerprint>(), Err(FingerprintError::Empty));
        assert_eq!("  ".parse::<Fingerprint>(), Err(FingerprintError::Empty));
        let sha1 = "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709".parse::<Fingerprint>();
        assert_eq!(sha1, Err(FingerprintError::Algorithm("sha1".into())));
        assert_eq!("sha256:abc".parse::<Fingerprint>(), Err(FingerprintError::Malformed(3)));
        let not_hex = format!("sha256:{}", "g".repeat(64));
        assert_eq!(not_hex.parse::<Fingerprint>(), Err(FingerprintError::Malformed(64)));
        let odd_pairs = format!("{}:A", "AB:".repeat(31));
        assert!(matches!(odd_pairs.parse::<Fingerprint>(), Err(FingerprintError::Malformed(_))));
        let too_long = format!("sha256:{}", "a".repeat(66));
        assert_eq!(too_long.parse::<Fingerprint>(), Err(FingerprintError::Malformed(66)));
        let msg = FingerprintError::Malformed(3).to_string();
        assert!(msg.contains("64 hex digits"), "{msg}");
    }
}
