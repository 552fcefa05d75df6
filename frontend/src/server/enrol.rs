//! Hosts added through the console: one-time join tokens, the hosts they
//! enrolled, revocation, and the console's own audit log of all three.
//!
//! Everything is a file in the enrolment directory (the `web-state` volume),
//! changed under an exclusive lock by the running console and by the
//! `dockward-web host …` commands alike; the console watches the registry and
//! rebuilds its fleet when it changes:
//!
//! ```text
//! tokens.json     pending tokens: host, URL, SHA-256 of the token, expiry, who
//! registry.json   enrolled hosts: name, URL, fingerprint, when, who
//! <host>          the host's shared secret (0600), as for DOCKWARD_HOSTS
//! <host>.pin      its certificate's fingerprint, learned at enrolment
//! audit.jsonl     token made, enrolled, refused, revoked: hash-chained, fsync'd
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::enrol::{JoinToken, JOIN_TOKEN_TTL_MAX_S};
use shared::EnrolAnswer;
use subtle::ConstantTimeEq;

/// Most tokens waiting at once.
pub const PENDING_MAX: usize = 64;
/// Most enrolled hosts.
pub const ENROLLED_MAX: usize = 1000;
/// Largest registry or token file read.
const FILE_MAX: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// Bad input: 400.
    #[error("{0}")]
    Invalid(String),
    /// An unknown, used or expired token: 401 (the same answer for each).
    #[error("this join token is unknown, already used or expired: ask the console for a new one")]
    Refused,
    /// The name is taken, or too many: 409.
    #[error("{0}")]
    Conflict(String),
    #[error("enrolment store {path}: {reason}")]
    Store { path: String, reason: String },
}

impl EnrolError {
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::Refused => 401,
            Self::Conflict(_) => 409,
            Self::Store { .. } => 500,
        }
    }
}

/// A token waiting to be presented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub host: String,
    pub url: String,
    /// Hex SHA-256 of the token: the token itself is never stored.
    hash: String,
    /// Unix seconds.
    pub expires_at: u64,
    pub by: String,
}

/// A host enrolled through the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolled {
    pub name: String,
    pub url: String,
    pub fingerprint: String,
    /// Unix seconds.
    pub enrolled_at: u64,
    pub by: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Tokens {
    tokens: Vec<Pending>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Registry {
    hosts: Vec<Enrolled>,
}

/// A new token, as shown once to the admin who asked for it.
#[derive(Debug)]
pub struct Issued {
    pub token: JoinToken,
    pub expires_at: u64,
}

pub fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The rules DOCKWARD_HOSTS applies to names.
pub fn valid_name(name: &str) -> bool {
    shared::valid_host_name(name)
}

fn valid_url(url: &str) -> Result<(), EnrolError> {
    if url == shared::OUTBOUND {
        return Ok(());
    }
    let rest = url.strip_prefix("https://").ok_or_else(|| {
        EnrolError::Invalid(format!(
            "{url:?}: a host's URL is https://address:port (its sidecar serves TLS), or `outbound` (its sidecar dials the console)"
        ))
    })?;
    let ok = !rest.is_empty()
        && rest.len() <= 253
        && !rest.contains(['/', '?', '#', '@', ' '])
        && rest.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(EnrolError::Invalid(format!("{url:?}: a host's URL is https://address:port, nothing more")))
    }
}

fn hash(token: &JoinToken) -> String {
    hex::encode(Sha256::digest(token.as_str().as_bytes()))
}

/// The enrolment directory.
#[derive(Debug, Clone)]
pub struct Enrolment {
    dir: PathBuf,
}

/// Holds the directory's lock while it lives.
struct Locked(#[allow(dead_code)] File);

impl Enrolment {
    /// Opens (and makes, 0700) the directory.
    pub fn open(dir: &Path) -> Result<Self, EnrolError> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| store(dir, e))?;
        Ok(Self { dir: dir.to_owned() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn registry_path(&self) -> PathBuf {
        self.dir.join("registry.json")
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    fn lock(&self) -> Result<Locked, EnrolError> {
        let path = self.dir.join(".lock");
        let f = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| store(&path, e))?;
        f.lock().map_err(|e| store(&path, e))?;
        Ok(Locked(f))
    }

    fn read<T: Default + for<'de> Deserialize<'de>>(&self, name: &str) -> Result<T, EnrolError> {
        use std::io::Read;
        let path = self.dir.join(name);
        let mut text = Vec::new();
        match File::open(&path) {
            Ok(f) => f.take(FILE_MAX + 1).read_to_end(&mut text).map_err(|e| store(&path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
            Err(e) => return Err(store(&path, e)),
        };
        if text.len() as u64 > FILE_MAX {
            return Err(store(&path, "larger than 4 MiB"));
        }
        serde_json::from_slice(&text).map_err(|e| store(&path, e))
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), EnrolError> {
        let path = self.dir.join(name);
        let json = serde_json::to_vec_pretty(value).map_err(|e| store(&path, e))?;
        write_whole(&path, &json, 0o600)
    }

    /// The hosts enrolled so far.
    pub fn hosts(&self) -> Result<Vec<Enrolled>, EnrolError> {
        Ok(self.read::<Registry>("registry.json")?.hosts)
    }

    /// The tokens still waiting (expired ones left out).
    pub fn pending(&self) -> Result<Vec<Pending>, EnrolError> {
        let now = now_s();
        Ok(self.read::<Tokens>("tokens.json")?.tokens.into_iter().filter(|t| t.expires_at > now).collect())
    }

    /// A join token for a new host `name` at `url`, valid `ttl_s` seconds
    /// (at most 15 minutes). `taken` says whether a name is already a host
    /// of the console's (from `DOCKWARD_HOSTS`).
    pub fn issue(
        &self,
        name: &str,
        url: &str,
        ttl_s: u64,
        by: &str,
        taken: impl Fn(&str) -> bool,
    ) -> Result<Issued, EnrolError> {
        if !valid_name(name) {
            return Err(EnrolError::Invalid(format!("host name {name:?}: use 1–64 letters, digits, '-', '_' or '.'")));
        }
        valid_url(url)?;
        if !(60..=JOIN_TOKEN_TTL_MAX_S).contains(&ttl_s) {
            return Err(EnrolError::Invalid(format!("a join token lives 1 to 15 minutes, not {ttl_s} s")));
        }
        let _lock = self.lock()?;
        let now = now_s();
        let mut tokens = self.read::<Tokens>("tokens.json")?;
        tokens.tokens.retain(|t| t.expires_at > now);
        let registry = self.read::<Registry>("registry.json")?;
        if taken(name) || registry.hosts.iter().any(|h| h.name == name) {
            return Err(EnrolError::Conflict(format!("{name} is already a host of this console")));
        }
        if tokens.tokens.iter().any(|t| t.host == name) {
            return Err(EnrolError::Conflict(format!("a join token for {name} is already waiting")));
        }
        if tokens.tokens.len() >= PENDING_MAX || registry.hosts.len() >= ENROLLED_MAX {
            return Err(EnrolError::Conflict("too many hosts or waiting tokens".into()));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| store(&self.dir, e))?;
        let token = JoinToken::from_random(raw);
        let expires_at = now + ttl_s;
        tokens.tokens.push(Pending {
            host: name.to_owned(),
            url: url.to_owned(),
            hash: hash(&token),
            expires_at,
            by: by.to_owned(),
        });
        self.write("tokens.json", &tokens)?;
        self.audit("host.token", name, by, &format!("url {url}; expires in {ttl_s} s"))?;
        Ok(Issued { token, expires_at })
    }

    /// A sidecar presents `token` with its certificate's `fingerprint`: the
    /// token is spent, the host recorded with a new secret and its pin.
    /// Unknown, used and expired tokens get the same refusal; each is audited.
    pub fn redeem(&self, token: &str, fingerprint: &str, peer: &str) -> Result<(Enrolled, EnrolAnswer), EnrolError> {
        let refused = |why: &str| {
            let _ = self.audit("host.enrol.refused", "-", peer, why);
        };
        let token = JoinToken::parse(token).map_err(|e| {
            refused("a malformed token");
            EnrolError::Invalid(e.to_string())
        })?;
        let fingerprint: tls::Fingerprint = fingerprint.parse().map_err(|e: tls::FingerprintError| {
            refused("a malformed fingerprint");
            EnrolError::Invalid(e.to_string())
        })?;
        let _lock = self.lock()?;
        let now = now_s();
        let mut tokens = self.read::<Tokens>("tokens.json")?;
        let presented = hash(&token);
        // Every stored hash is compared: timing tells nothing about which matched.
        let mut found = None;
        for (i, t) in tokens.tokens.iter().enumerate() {
            if bool::from(t.hash.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(i);
            }
        }
        let Some(i) = found else {
            refused("an unknown or used token");
            return Err(EnrolError::Refused);
        };
        let pending = tokens.tokens.remove(i);
        // Spent now, whatever happens next: a token works once.
        self.write("tokens.json", &tokens)?;
        if pending.expires_at <= now {
            let _ = self.audit("host.enrol.refused", &pending.host, peer, "an expired token");
            return Err(EnrolError::Refused);
        }
        let mut registry = self.read::<Registry>("registry.json")?;
        if registry.hosts.iter().any(|h| h.name == pending.host) {
            let _ = self.audit("host.enrol.refused", &pending.host, peer, "the name is taken");
            return Err(EnrolError::Conflict(format!("{} is already enrolled", pending.host)));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| store(&self.dir, e))?;
        let secret = hex::encode(raw);
        write_whole(&self.dir.join(&pending.host), format!("{secret}\n").as_bytes(), 0o600)?;
        write_whole(&self.dir.join(format!("{}.pin", pending.host)), format!("{fingerprint}\n").as_bytes(), 0o600)?;
        let host = Enrolled {
            name: pending.host.clone(),
            url: pending.url.clone(),
            fingerprint: fingerprint.to_string(),
            enrolled_at: now,
            by: pending.by.clone(),
        };
        registry.hosts.push(host.clone());
        self.write("registry.json", &registry)?;
        self.audit("host.enrolled", &host.name, peer, &format!("fingerprint {fingerprint}; token by {}", pending.by))?;
        Ok((host.clone(), EnrolAnswer { host: host.name, secret }))
    }

    /// Forgets an enrolled host: out of the registry, its secret and pin
    /// deleted (the caller first asks the sidecar to revoke them).
    pub fn remove(&self, name: &str, by: &str, detail: &str) -> Result<Enrolled, EnrolError> {
        let _lock = self.lock()?;
        let mut registry = self.read::<Registry>("registry.json")?;
        let i = registry
            .hosts
            .iter()
            .position(|h| h.name == name)
            .ok_or_else(|| EnrolError::Invalid(format!("{name} is not a host enrolled through the console")))?;
        let host = registry.hosts.remove(i);
        self.write("registry.json", &registry)?;
        for f in [self.dir.join(name), self.dir.join(format!("{name}.pin"))] {
            let _ = fs::remove_file(f);
        }
        self.audit("host.revoked", name, by, detail)?;
        Ok(host)
    }

    /// Appends one record to the console's audit log, chained to the one
    /// before by SHA-256, and fsyncs it.
    pub fn audit(&self, action: &str, host: &str, actor: &str, detail: &str) -> Result<(), EnrolError> {
        let path = self.audit_path();
        let prev = last_line(&path)
            .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .and_then(|v| v["hash"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "0".repeat(64));
        let body = serde_json::json!({
            "at": now_s(), "action": action, "host": host, "actor": actor, "detail": detail, "prev": prev,
        });
        let hash = hex::encode(Sha256::digest(body.to_string().as_bytes()));
        let mut record = body;
        record["hash"] = serde_json::Value::String(hash);
        let mut f = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| store(&path, e))?;
        f.write_all(format!("{record}\n").as_bytes()).and_then(|()| f.sync_all()).map_err(|e| store(&path, e))?;
        tracing::info!(action, host, actor, detail, "enrolment");
        Ok(())
    }
}

/// Revokes enrolled host `name`: asks its sidecar (when there is one to
/// ask) to forget its secrets, audited there under `by`, then forgets the
/// host here. What happened, in words. The console's `/hosts` page, its
/// server function and `dockward-web host revoke` all come here.
pub async fn revoke(
    e: &Enrolment,
    sidecar: Option<&super::sidecar::Sidecar>,
    name: &str,
    by: &str,
) -> Result<String, EnrolError> {
    let call = shared::Call::new(shared::Verb::Revoke, &[]);
    let told = match sidecar {
        Some(h) => match h.call::<shared::RevokeReport>(&call, Some(by), None).await {
            Ok(r) => format!("its sidecar forgot {} secret(s)", r.keys_forgotten),
            Err(err) => format!("its sidecar could not be told ({err}); its secret is deleted here"),
        },
        None => "its sidecar was not in the fleet; its secret is deleted here".to_owned(),
    };
    e.remove(name, by, &told)?;
    Ok(format!("{name} revoked: {told}"))
}

/// The one command to run on a new host: its sidecar, hardened as in
/// compose, joining the console at `agent_url` (pinned) with `token`; its
/// port published on the address of `url`, or, for an `outbound` host, no
/// port at all: it dials the console.
pub fn join_command(url: &str, agent_url: &str, agent_pin: &str, token: &str) -> String {
    let (publish, outbound) = if url == shared::OUTBOUND {
        // Its listener stays on the container's loopback, for its own healthcheck.
        ("-e DOCKWARD_LISTEN=127.0.0.1:7700".to_owned(), " --outbound")
    } else {
        let publish = url.trim_start_matches("https://");
        let publish = if publish.contains(':') { publish.to_owned() } else { format!("{publish}:7700") };
        (format!("-p {publish}:7700"), "")
    };
    format!(
        "docker run -d --name dockward-sidecar --restart unless-stopped \\\n  \
         -u 0:0 --cap-drop ALL --cap-add SETUID --cap-add SETGID --security-opt no-new-privileges:true --read-only \\\n  \
         -e DOCKWARD_RUN_AS=65532:65532 -e DOCKWARD_SECRET_FILE=/var/lib/dockward-key/secret \\\n  \
         -v /var/run/docker.sock:/var/run/docker.sock -v dockward-audit:/var/lib/dockward -v dockward-key:/var/lib/dockward-key \\\n  \
         {publish} --label dockward.protect=true \\\n  \
         dockward-sidecar:local join --console {agent_url} --console-pin {agent_pin} --token {token}{outbound}"
    )
}

/// The file's last line, read from its last 8 KiB (a record is far smaller).
fn last_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(8192))).ok()?;
    let mut tail = String::new();
    f.read_to_string(&mut tail).ok()?;
    tail.lines().rfind(|l| !l.trim().is_empty()).map(str::to_owned)
}

fn store(path: &Path, e: impl std::fmt::Display) -> EnrolError {
    EnrolError::Store { path: path.display().to_string(), reason: e.to_string() }
}

fn write_whole(path: &Path, bytes: &[u8], mode: u32) -> Result<(), EnrolError> {
    tls::identity::write_new(path, bytes, mode).map_err(|e| store(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> String {
        tls::Fingerprint::of(b"a certificate").to_string()
    }

    #[test]
    fn a_token_enrols_once_and_is_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let e = Enrolment::open(dir.path()).unwrap();
        let issued = e.issue("db1", "https://10.0.0.12:7700", 900, "alice", |_| false).unwrap();
        let stored = fs::read_to_string(dir.path().join("tokens.json")).unwrap();
        assert!(!stored.contains(issued.token.as_str()), "only its hash is kept");
        let (host, answer) = e.redeem(issued.token.as_str(), &fp(), "10.0.0.12").unwrap();
        assert_eq!((host.name.as_str(), answer.host.as_str()), ("db1", "db1"));
        assert!(answer.secret.len() >= 32);
        assert_eq!(fs::read_to_string(dir.path().join("db1")).unwrap().trim(), answer.secret);
        assert_eq!(fs::read_to_string(dir.path().join("db1.pin")).unwrap().trim(), fp());
        assert_eq!(e.hosts().unwrap(), vec![host]);
        // Once.
        assert!(matches!(e.redeem(issued.token.as_str(), &fp(), "x"), Err(EnrolError::Refused)));
        // A name enrolled cannot get another token.
        assert!(matches!(e.issue("db1", "https://x:1", 900, "alice", |_| false), Err(EnrolError::Conflict(_))));
        let audit = fs::read_to_string(e.audit_path()).unwrap();
        let actions: Vec<String> = audit
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(actions, ["host.token", "host.enrolled", "host.enrol.refused"]);
    }

    #[test]
    fn expired_forged_and_malformed_tokens_are_refused_and_audited() {
        let dir = tempfile::tempdir().unwrap();
        let e = Enrolment::open(dir.path()).unwrap();
        let issued = e.issue("db2", "https://db2:7700", 60, "alice", |_| false).unwrap();
        // Expire it in place.
        let text = fs::read_to_string(dir.path().join("tokens.json")).unwrap();
        let text = text.replace(&issued.expires_at.to_string(), &(now_s() - 1).to_string());
        fs::write(dir.path().join("tokens.json"), text).unwrap();
        assert!(matches!(e.redeem(issued.token.as_str(), &fp(), "p"), Err(EnrolError::Refused)));
        let forged = JoinToken::from_random([7; 32]);
        assert!(matches!(e.redeem(forged.as_str(), &fp(), "p"), Err(EnrolError::Refused)));
        let bad = e.redeem("dwj_nope", &fp(), "p").unwrap_err();
        assert_eq!(bad.status(), 400);
        assert!(bad.to_string().contains("64 hex digits"), "{bad}");
        let other = e.issue("db3", "https://db3:7700", 900, "alice", |_| false).unwrap();
        let bad = e.redeem(other.token.as_str(), "sha256:12", "p").unwrap_err();
        assert_eq!(bad.status(), 400);
        assert!(e.hosts().unwrap().is_empty());
        let audit = fs::read_to_string(e.audit_path()).unwrap();
        assert_eq!(audit.matches("host.enrol.refused").count(), 4, "{audit}");
        // The chain: each record names the hash of the one before.
        let records: Vec<serde_json::Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for pair in records.windows(2) {
            assert_eq!(pair[1]["prev"], pair[0]["hash"]);
        }
    }

    #[test]
    fn bad_requests_for_tokens_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let e = Enrolment::open(dir.path()).unwrap();
        for (name, url, ttl) in [
            ("bad name!", "https://h:1", 900),
            ("h", "http://h:1", 900),
            ("h", "https://h:1/path", 900),
            ("h", "https://h:1", 3600),
            ("h", "https://h:1", 10),
        ] {
            let err = e.issue(name, url, ttl, "a", |_| false).unwrap_err();
            assert_eq!(err.status(), 400, "{name} {url} {ttl}: {err}");
        }
        let err = e.issue("local", "https://h:1", 900, "a", |n| n == "local").unwrap_err();
        assert_eq!(err.status(), 409);
    }
}
