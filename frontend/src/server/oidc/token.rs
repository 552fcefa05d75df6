//! An ID token, checked (OpenID Connect Core §3.1.3.7): a compact JWS whose
//! algorithm is on the allow-list (RS256/384/512, PS256, ES256/384, EdDSA;
//! never `none` or an HMAC), signed by a key of the provider's JWKS (by
//! `kid`), from the issuer, for this client, not expired, and carrying the
//! nonce of this sign-in. Signatures are verified with ring.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Longest ID token read.
const TOKEN_MAX: usize = 16 * 1024;
/// Clock skew allowed on `exp`, `nbf` and `iat`, seconds.
pub const LEEWAY_S: u64 = 60;

/// Why an ID token was refused (said to the user as is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the ID token is malformed ({0})")]
    Malformed(&'static str),
    #[error("the ID token's algorithm {0:?} is not accepted")]
    Algorithm(String),
    #[error("the ID token was signed by a key the provider does not publish")]
    UnknownKey,
    #[error("the ID token's signature is not valid")]
    Signature,
    #[error("the ID token was issued by {0:?}, not the configured issuer")]
    Issuer(String),
    #[error("the ID token is not meant for this console (audience)")]
    Audience,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not valid yet")]
    NotYet,
    #[error("the ID token does not belong to this sign-in (nonce)")]
    Nonce,
}

/// One key of a JWKS, as published.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Jwks {
    #[serde(default)]
    pub keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// What the checks expect.
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now_s: u64,
}

fn b64(s: &str, what: &'static str) -> Result<Vec<u8>, Refused> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|_| Refused::Malformed(what))
}

/// The key id a token names (to refetch the JWKS when it is unknown).
pub fn kid(token: &str) -> Option<String> {
    let head = token.split('.').next()?;
    serde_json::from_slice::<Header>(&b64(head, "header").ok()?).ok()?.kid
}

/// Checks `token` against `keys` and `e`: its claims when all is right.
pub fn verify(token: &str, keys: &Jwks, e: &Expect<'_>) -> Result<Map<String, Value>, Refused> {
    if token.len() > TOKEN_MAX {
        return Err(Refused::Malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Refused::Malformed("not three parts"));
    };
    let header: Header = serde_json::from_slice(&b64(h, "header")?).map_err(|_| Refused::Malformed("header"))?;
    let sig = b64(s, "signature")?;
    let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
    let fits = |k: &&Jwk| {
        header.kid.as_ref().is_none_or(|kid| k.kid.as_ref() == Some(kid))
            && k.use_.as_deref().is_none_or(|u| u == "sig")
            && k.alg.as_deref().is_none_or(|a| a == header.alg)
    };
    let candidates: Vec<&Jwk> = keys.keys.iter().filter(fits).collect();
    let check = |k: &Jwk| -> Result<bool, Refused> {
        let rsa = |alg: &'static signature::RsaParameters| -> Result<bool, Refused> {
            if k.kty != "RSA" {
                return Ok(false);
            }
            let (Some(n), Some(e)) = (&k.n, &k.e) else { return Ok(false) };
            let (n, e) = (b64(n, "key")?, b64(e, "key")?);
            Ok(signature::RsaPublicKeyComponents { n: &n, e: &e }.verify(alg, signed, &sig).is_ok())
        };
        let ec = |crv: &str, alg: &'static signature::EcdsaVerificationAlgorithm| -> Result<bool, Refused> {
            if k.kty != "EC" || k.crv.as_deref() != Some(crv) {
                return Ok(false);
            }
            let (Some(x), Some(y)) = (&k.x, &k.y) else { return Ok(false) };
            let mut point = vec![0x04];
            point.extend(b64(x, "key")?);
            point.extend(b64(y, "key")?);
            Ok(UnparsedPublicKey::new(alg, &point).verify(signed, &sig).is_ok())
        };
        match header.alg.as_str() {
            "RS256" => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
            "RS384" => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
            "RS512" => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
            "PS256" => rsa(&signature::RSA_PSS_2048_8192_SHA256),
            "ES256" => ec("P-256", &signature::ECDSA_P256_SHA256_FIXED),
            "ES384" => ec("P-384", &signature::ECDSA_P384_SHA384_FIXED),
            "EdDSA" => {
                if k.kty != "OKP" || k.crv.as_deref() != Some("Ed25519") {
                    return Ok(false);
                }
                let Some(x) = &k.x else { return Ok(false) };
                Ok(UnparsedPublicKey::new(&signature::ED25519, b64(x, "key")?).verify(signed, &sig).is_ok())
            }
            other => Err(Refused::Algorithm(other.chars().take(16).collect())),
        }
    };
    // The algorithm is judged before any key is looked at.
    if !matches!(header.alg.as_str(), "RS256" | "RS384" | "RS512" | "PS256" | "ES256" | "ES384" | "EdDSA") {
        return Err(Refused::Algorithm(header.alg.chars().take(16).collect()));
    }
    if candidates.is_empty() {
        return Err(Refused::UnknownKey);
    }
    let mut good = false;
    for k in candidates {
        if check(k)? {
            good = true;
            break;
        }
    }
    if !good {
        return Err(Refused::Signature);
    }
    let claims: Map<String, Value> =
        serde_json::from_slice(&b64(p, "payload")?).map_err(|_| Refused::Malformed("payload"))?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    // Times are whole numbers of seconds: any other type is refused, not skipped.
    let time = |k: &str| -> Result<Option<u64>, Refused> {
        match claims.get(k) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or(Refused::Malformed("a time claim is not a number of seconds")),
        }
    };
    match text("iss") {
        Some(iss) if iss == e.issuer => {}
        other => return Err(Refused::Issuer(other.unwrap_or("").chars().take(128).collect())),
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&e.client_id) {
        return Err(Refused::Audience);
    }
    if audiences.len() > 1 && text("azp") != Some(e.client_id) {
        return Err(Refused::Audience);
    }
    match time("exp")? {
        Some(exp) if exp + LEEWAY_S > e.now_s => {}
        Some(_) => return Err(Refused::Expired),
        None => return Err(Refused::Malformed("no exp")),
    }
    if time("nbf")?.is_some_and(|nbf| nbf > e.now_s + LEEWAY_S)
        || time("iat")?.is_some_and(|iat| iat > e.now_s + LEEWAY_S)
    {
        return Err(Refused::NotYet);
    }
    let nonce_ok =
        text("nonce").is_some_and(|n| bool::from(subtle::ConstantTimeEq::ct_eq(n.as_bytes(), e.nonce.as_bytes())));
    if !nonce_ok {
        return Err(Refused::Nonce);
    }
    if text("sub").is_none_or(str::is_empty) {
        return Err(Refused::Malformed("no sub"));
    }
    Ok(claims)
}

/// A claim by name, or by a dotted path into nested objects (`realm_access.roles`).
pub fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    /// A provider's signing key and its JWK (ES256).
    pub struct TestKey {
        pair: EcdsaKeyPair,
        pub jwk: Value,
    }

    impl TestKey {
        pub fn new(kid: &str) -> Self {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
            let public = pair.public_key().as_ref();
            let jwk = serde_json::json!({
                "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                "x": URL_SAFE_NO_PAD.encode(&public[1..33]), "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
            });
            TestKey { pair, jwk }
        }

        pub fn sign(&self, header: &Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let sig = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }
    }

    fn jwks(keys: &[&Value]) -> Jwks {
        serde_json::from_value(serde_json::json!({ "keys": keys })).unwrap()
    }

    const NOW: u64 = 1_800_000_000;

    fn claims() -> Value {
        serde_json::json!({
            "iss": "https://idp.example", "aud": "dockward", "sub": "u1", "nonce": "n1",
            "exp": NOW + 300, "iat": NOW, "preferred_username": "alice",
            "groups": ["ops"], "realm_access": { "roles": ["admin"] },
        })
    }

    fn expect() -> Expect<'static> {
        Expect { issuer: "https://idp.example", client_id: "dockward", nonce: "n1", now_s: NOW }
    }

    fn with(change: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let mut c = claims();
        change(c.as_object_mut().unwrap());
        c
    }

    #[test]
    fn a_right_token_passes_and_every_wrong_one_says_why() {
        let key = TestKey::new("k1");
        let keys = jwks(&[&key.jwk]);
        let head = serde_json::json!({"alg": "ES256", "kid": "k1"});
        let good = key.sign(&head, &claims());
        let c = verify(&good, &keys, &expect()).unwrap();
        assert_eq!(claim(&c, "preferred_username"), Some(&Value::from("alice")));
        assert_eq!(claim(&c, "realm_access.roles"), Some(&serde_json::json!(["admin"])));
        assert_eq!(kid(&good).as_deref(), Some("k1"));

        // Tampered: the payload changed after signing.
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(
            with(|c| {
                c.insert("preferred_username".into(), "admin".into());
            })
            .to_string(),
        );
        assert_eq!(verify(&parts.join("."), &keys, &expect()), Err(Refused::Signature));
        // Signed by another key with the same id.
        let other = TestKey::new("k1");
        assert_eq!(verify(&other.sign(&head, &claims()), &keys, &expect()), Err(Refused::Signature));
        // A key the provider does not publish.
        let unknown = serde_json::json!({"alg": "ES256", "kid": "k9"});
        assert_eq!(verify(&key.sign(&unknown, &claims()), &keys, &expect()), Err(Refused::UnknownKey));
        // Algorithms off the list, whatever the signature.
        for alg in ["none", "HS256", "RS1"] {
            let h = serde_json::json!({"alg": alg, "kid": "k1"});
            assert_eq!(
                verify(&key.sign(&h, &claims()), &keys, &expect()),
                Err(Refused::Algorithm(alg.into())),
                "{alg}"
            );
        }
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        assert!(verify(&unsigned, &keys, &expect()).is_err());
        let sign = |c: Value| key.sign(&head, &c);
        let cases: Vec<(Value, Refused)> = vec![
            (
                with(|c| {
                    c.insert("iss".into(), "https://evil.example".into());
                }),
                Refused::Issuer("https://evil.example".into()),
            ),
            (
                with(|c| {
                    c.insert("aud".into(), "another".into());
                }),
                Refused::Audience,
            ),
            (
                with(|c| {
                    c.insert("aud".into(), serde_json::json!(["dockward", "another"]));
                }),
                Refused::Audience,
            ),
            (
                with(|c| {
                    c.insert("exp".into(), (NOW - 120).into());
                }),
                Refused::Expired,
            ),
            (
                with(|c| {
                    c.insert("exp".into(), "tomorrow".into());
                }),
                Refused::Malformed("a time claim is not a number of seconds"),
            ),
            (
                with(|c| {
                    c.remove("exp");
                }),
                Refused::Malformed("no exp"),
            ),
            (
                with(|c| {
                    c.insert("nbf".into(), (NOW + 600).into());
                }),
                Refused::NotYet,
            ),
            (
                with(|c| {
                    c.insert("nonce".into(), "n2".into());
                }),
                Refused::Nonce,
            ),
            (
                with(|c| {
                    c.remove("nonce");
                }),
                Refused::Nonce,
            ),
            (
                with(|c| {
                    c.remove("sub");
                }),
                Refused::Malformed("no sub"),
            ),
        ];
        for (c, want) in cases {
            assert_eq!(verify(&sign(c.clone()), &keys, &expect()), Err(want), "{c}");
        }
        // Several audiences with this client as the authorised party pass.
        let azp = with(|c| {
            c.insert("aud".into(), serde_json::json!(["dockward", "another"]));
            c.insert("azp".into(), "dockward".into());
        });
        assert!(verify(&sign(azp), &keys, &expect()).is_ok());
        assert_eq!(verify("a.b", &keys, &expect()), Err(Refused::Malformed("not three parts")));
    }

    #[test]
    fn ed25519_keys_verify_too() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "e1", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"e1"}"#),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()).as_ref()));
        assert!(verify(&token, &jwks(&[&jwk]), &expect()).is_ok());
    }
}
