//! Newer versions of a version-tagged image (`1.27.3`, `v2.4`,
//! `1.27-alpine`): the newest tag within the same major and the newest
//! overall, from the registry's tag list. The console asks (never the
//! privileged sidecar), anonymously, only registries it may reach: those
//! `DOCKWARD_TAG_REGISTRIES` lists, or with no list any public registry name
//! (the sidecar's rule for pulls, `shared::unlisted_registry_refusal`). Tag
//! lists are cached (6 h; failures 15 min), requests to one registry are
//! spaced by 250 ms, four at most in flight, answers capped at 1 MiB.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::ImageRef;

use crate::types::NewerVersions;

const TAGS_FRESH: Duration = Duration::from_secs(6 * 3600);
const FAILED_FRESH: Duration = Duration::from_secs(15 * 60);
const PACE: Duration = Duration::from_millis(250);
const ANSWER_MAX: usize = 1 << 20;
const TAGS_MAX: usize = 10_000;
const REPOSITORIES_MAX: usize = 10_000;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A tag that is a version: its numbers (1–3), and what follows them after
/// a `-` (a variant such as `alpine`, compared only with the same variant).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    nums: Vec<u64>,
    variant: String,
}

fn version(tag: &str) -> Option<Version> {
    let rest = tag.strip_prefix('v').unwrap_or(tag);
    let (core, variant) = rest.split_once('-').unwrap_or((rest, ""));
    let nums: Vec<u64> = core
        .split('.')
        .map(|p| {
            (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse().ok()).flatten()
        })
        .collect::<Option<_>>()?;
    (1..=3).contains(&nums.len()).then(|| Version { nums, variant: variant.to_owned() })
}

/// The newest tag of `tags` in `current`'s major, and the newest overall,
/// each only if newer than `current` (tags of the same shape and variant:
/// `1.27.3` is compared with `1.28.0`, not with `1` or `1.28-alpine`).
pub fn newer<'a>(current: &str, tags: impl IntoIterator<Item = &'a str>) -> Option<NewerVersions> {
    let cur = version(current)?;
    let mut same_major: Option<(Version, &str)> = None;
    let mut newest: Option<(Version, &str)> = None;
    for t in tags {
        let Some(v) = version(t) else { continue };
        if v.variant != cur.variant || v.nums.len() != cur.nums.len() || v.nums <= cur.nums {
            continue;
        }
        if v.nums[0] == cur.nums[0] && same_major.as_ref().is_none_or(|(b, _)| v.nums > b.nums) {
            same_major = Some((v.clone(), t));
        }
        if newest.as_ref().is_none_or(|(b, _)| v.nums > b.nums) {
            newest = Some((v, t));
        }
    }
    let found =
        NewerVersions { same_major: same_major.map(|(_, t)| t.to_owned()), newest: newest.map(|(_, t)| t.to_owned()) };
    (found.same_major.is_some() || found.newest.is_some()).then_some(found)
}

/// A repository's tags, or why they could not be had.
type TagsAnswer = Result<Arc<Vec<String>>, String>;

/// Registry tag lists, cached and paced.
pub struct TagLister {
    http: reqwest::Client,
    /// `DOCKWARD_TAG_REGISTRIES`: the registries that may be asked (empty: public names).
    allowed: Vec<String>,
    cache: Mutex<HashMap<String, (Instant, TagsAnswer)>>,
    next_slot: Mutex<HashMap<String, Instant>>,
    in_flight: tokio::sync::Semaphore,
}

impl TagLister {
    pub fn new(allowed: Vec<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        Self {
            http,
            allowed,
            cache: Mutex::default(),
            next_slot: Mutex::default(),
            in_flight: tokio::sync::Semaphore::new(4),
        }
    }

    fn may_ask(&self, registry: &str) -> bool {
        if self.allowed.is_empty() {
            shared::unlisted_registry_refusal(registry).is_none()
        } else {
            self.allowed.iter().any(|r| r.eq_ignore_ascii_case(registry))
        }
    }

    /// Newer versions of `image`'s tag, when it is a version and its
    /// registry may be asked; `None` otherwise or when the list cannot be had.
    pub async fn newer_for(&self, image: &ImageRef) -> Option<NewerVersions> {
        let tag = image.tag.as_deref()?;
        version(tag)?;
        if image.digest.is_some() || !self.may_ask(&image.registry) {
            return None;
        }
        let tags = self.tags(image).await.ok()?;
        newer(tag, tags.iter().map(String::as_str))
    }

    async fn tags(&self, image: &ImageRef) -> Result<Arc<Vec<String>>, String> {
        let key = format!("{}/{}", image.registry, image.repository);
        if let Some((at, r)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            let fresh = if r.is_ok() { TAGS_FRESH } else { FAILED_FRESH };
            if at.elapsed() < fresh {
                return r.clone();
            }
        }
        let _permit = self.in_flight.acquire().await.map_err(|e| e.to_string())?;
        self.paced(&image.registry).await;
        let r = self.fetch(image).await.map(Arc::new);
        if let Err(e) = &r {
            tracing::info!(repository = %key, error = %e, "no tag list");
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= REPOSITORIES_MAX {
            cache.retain(|_, (at, _)| at.elapsed() < FAILED_FRESH);
        }
        if cache.len() < REPOSITORIES_MAX {
            cache.insert(key, (Instant::now(), r.clone()));
        }
        r
    }

    async fn paced(&self, registry: &str) {
        let wait = {
            let mut slots = self.next_slot.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if slots.len() > 1_000 {
                slots.retain(|_, t| *t > now);
            }
            let slot = slots.get(registry).copied().filter(|t| *t > now).unwrap_or(now);
            slots.insert(registry.to_owned(), slot + PACE);
            slot - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    async fn fetch(&self, image: &ImageRef) -> Result<Vec<String>, String> {
        let host = if image.registry == "docker.io" { "registry-1.docker.io" } else { image.registry.as_str() };
        // Registries on loopback speak plain HTTP (as the engine allows them to).
        let loopback = host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]");
        let scheme = if loopback { "http" } else { "https" };
        let url = format!("{scheme}://{host}/v2/{}/tags/list?n=1000", image.repository);
        let first = self.http.get(&url).send().await.map_err(|e| e.to_string())?;
        let resp = if first.status() == reqwest::StatusCode::UNAUTHORIZED {
            let challenge = first
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .ok_or("401 without a challenge")?
                .to_owned();
            let token = self.anonymous_token(&challenge).await?;
            self.http.get(&url).bearer_auth(token).send().await.map_err(|e| e.to_string())?
        } else {
            first
        };
        if !resp.status().is_success() {
            return Err(format!("the registry answered {}", resp.status()));
        }
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let body = capped(resp).await?;
        let list: TagList = serde_json::from_slice(&body).map_err(|e| format!("not a tag list: {e}"))?;
        Ok(list.tags.unwrap_or_default().into_iter().take(TAGS_MAX).collect())
    }

    /// A token for anonymous pulls, from a `Bearer realm=…,service=…,scope=…` challenge.
    async fn anonymous_token(&self, challenge: &str) -> Result<String, String> {
        let params = challenge.strip_prefix("Bearer ").ok_or("not a bearer challenge")?;
        let mut realm = None;
        let mut query = Vec::new();
        for part in params.split(',') {
            let Some((k, v)) = part.trim().split_once('=') else { continue };
            let v = v.trim_matches('"').to_owned();
            match k {
                "realm" => realm = Some(v),
                "service" | "scope" => query.push((k.to_owned(), v)),
                _ => {}
            }
        }
        let realm = realm.ok_or("no realm in the challenge")?;
        let realm_url = reqwest::Url::parse(&realm).map_err(|e| e.to_string())?;
        // The token service must be a public HTTPS name, like any registry asked unlisted.
        let realm_host = realm_url.host_str().unwrap_or("");
        if realm_url.scheme() != "https"
            || (self.allowed.is_empty() && shared::unlisted_registry_refusal(realm_host).is_some())
        {
            return Err(format!("refusing the token service {realm_host:?}"));
        }
        let resp = self.http.get(realm_url).query(&query).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("the token service answered {}", resp.status()));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&capped(resp).await?).map_err(|e| e.to_string())?;
        t.token.or(t.access_token).ok_or_else(|| "no token in the answer".to_owned())
    }
}

async fn capped(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > ANSWER_MAX {
            return Err(format!("an answer larger than {ANSWER_MAX} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(same: Option<&str>, newest: Option<&str>) -> Option<NewerVersions> {
        Some(NewerVersions { same_major: same.map(str::to_owned), newest: newest.map(str::to_owned) })
    }

    #[test]
    fn newest_in_the_major_and_overall() {
        let tags = ["1.27.3", "1.27.10", "1.28.0", "2.0.1", "2.0.0", "latest", "1.29", "1.30.0-alpine", "v3.0.0"];
        assert_eq!(newer("1.27.3", tags), n(Some("1.28.0"), Some("v3.0.0")));
        assert_eq!(newer("v2.0.0", tags), n(Some("2.0.1"), Some("v3.0.0")));
        assert_eq!(newer("3.0.0", tags), None, "nothing newer");
        assert_eq!(newer("latest", tags), None, "not a version");
        assert_eq!(newer("1.29.0-alpine", tags), n(Some("1.30.0-alpine"), Some("1.30.0-alpine")), "same variant only");
        assert_eq!(newer("1.28", ["1.29", "1.28.5", "2.1"]), n(Some("1.29"), Some("2.1")), "same shape only");
    }

    #[test]
    fn versions_are_numbers() {
        assert!(version("1.2.3").is_some() && version("v10").is_some());
        assert!(version("1.2.3.4").is_none() && version("1..2").is_none() && version("1.x").is_none());
        assert!(version("12345678901").is_none(), "bounded");
    }
}
