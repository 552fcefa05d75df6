//! Hosts found by DNS (`DOCKWARD_DISCOVER=group=name:port`): every address
//! the name resolves to is a sidecar, as Docker Swarm's `tasks.<service>`
//! gives one per task of a global service, so a node that joins appears
//! without configuration. They share the group's secret and pins
//! (`<secrets dir>/<group>`, `<group>.pin`: one Docker secret for the whole
//! service). Each is named by what its `/healthz` reports (`node`, the Swarm
//! node's hostname in stack.yaml), else `<group>-<address>`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use shared::{Call, Verb};

use super::sidecar::{self, Links, Sidecar};

/// How long one resolution and the names' lookups may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Most hosts one name may bring.
const MAX_DISCOVERED: usize = 1000;

/// A parsed `DOCKWARD_DISCOVER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discover {
    pub group: String,
    pub name: String,
    pub port: u16,
}

impl Discover {
    /// `group=name:port`, or nothing for an empty value.
    pub fn parse(spec: &str) -> Result<Option<Self>, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Ok(None);
        }
        let bad = |why: &str| format!("DOCKWARD_DISCOVER {spec:?}: {why} (e.g. swarm=tasks.sidecar:7700)");
        let (group, target) = spec.split_once('=').ok_or_else(|| bad("not group=name:port"))?;
        if !shared::valid_host_name(group) {
            return Err(bad("the group is 1–64 letters, digits, '-', '_' or '.'"));
        }
        let (name, port) = target.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(|| bad("not a port"))?;
        let name_ok = !name.is_empty()
            && name.len() <= 253
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            return Err(bad("not a DNS name"));
        }
        Ok(Some(Self { group: group.to_owned(), name: name.to_owned(), port }))
    }

    /// The addresses the name resolves to now, sorted (none if it does not).
    pub async fn addresses(&self) -> Vec<SocketAddr> {
        let lookup = tokio::net::lookup_host((self.name.as_str(), self.port));
        let mut found: Vec<SocketAddr> = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => addrs.take(MAX_DISCOVERED).collect(),
            Ok(Err(e)) => {
                tracing::debug!(name = %self.name, error = %e, "discovery: the name does not resolve");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        found.sort();
        found.dedup();
        found
    }

    /// The hosts at the name's addresses, as `(name, url)`, each named by its
    /// `/healthz` (over TLS with the group's pins; all asked at once, 5 s at
    /// most) or, failing that, by its address. An address among `known`
    /// under a name of its own keeps it without being asked again; one named
    /// by its address is asked again. A name claimed twice goes to the host
    /// that had it.
    pub async fn hosts(&self, secrets_dir: &Path, links: &Links, known: &[(String, String)]) -> Vec<(String, String)> {
        let fallback = |addr: &SocketAddr| format!("{}-{}", self.group, addr.ip().to_string().replace([':', '.'], "-"));
        let mut probes = Vec::new();
        for addr in self.addresses().await {
            let url = match addr {
                SocketAddr::V4(a) => format!("https://{a}"),
                SocketAddr::V6(a) => format!("https://[{}]:{}", a.ip(), a.port()),
            };
            let fallback = fallback(&addr);
            let kept = known.iter().find(|(n, u)| *u == url && *n != fallback).map(|(n, _)| n.clone());
            let probe = match (&kept, self.sidecar(&fallback, &url, secrets_dir, links)) {
                (Some(_), _) => None,
                (None, Ok(p)) => Some(p),
                (None, Err(e)) => {
                    tracing::error!(error = %e, "discovery: the group's secret or pins cannot be read");
                    return Vec::new();
                }
            };
            probes.push(async move {
                let named = match probe {
                    Some(p) => node_name(&p).await,
                    None => None,
                };
                (kept, named, fallback, url)
            });
        }
        let found = futures_util::future::join_all(probes).await;
        // Names kept from before first, so a newcomer cannot take one.
        let mut out: Vec<(String, String)> =
            found.iter().filter_map(|(kept, _, _, url)| Some((kept.clone()?, url.clone()))).collect();
        for (kept, named, fallback, url) in found {
            if kept.is_some() {
                continue;
            }
            let name = named.filter(|n| !out.iter().any(|(o, _)| o == n)).unwrap_or(fallback);
            out.push((name, url));
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    /// A discovered host's client: the group's secret and pins.
    pub fn sidecar(&self, name: &str, url: &str, secrets_dir: &Path, links: &Links) -> Result<Sidecar, String> {
        let secret = secrets_dir.join(&self.group);
        let pins = secrets_dir.join(format!("{}.pin", self.group));
        sidecar::host_files(name, url, &secret, &pins, links)
    }
}

/// What the sidecar's `/healthz` names it, if that is a valid host name.
async fn node_name(probe: &Sidecar) -> Option<String> {
    let report = tokio::time::timeout(
        LOOKUP_TIMEOUT,
        probe.call::<serde_json::Value>(&Call::new(Verb::Healthz, &[]), None, None),
    )
    .await
    .ok()?
    .ok()?;
    let node = report["node"].as_str()?;
    shared::valid_host_name(node).then(|| node.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_say_why() {
        let d = Discover::parse("swarm=tasks.sidecar:7700").unwrap().unwrap();
        assert_eq!(d, Discover { group: "swarm".into(), name: "tasks.sidecar".into(), port: 7700 });
        assert_eq!(Discover::parse("  ").unwrap(), None);
        for bad in
            ["tasks.sidecar:7700", "swarm=tasks.sidecar", "swarm=tasks.sidecar:0", "a b=x:1", "s=bad name:1", "s=:1"]
        {
            let e = Discover::parse(bad).unwrap_err();
            assert!(e.contains("DOCKWARD_DISCOVER"), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn a_name_resolves_to_its_addresses() {
        let d = Discover::parse("local=localhost:7700").unwrap().unwrap();
        let found = d.addresses().await;
        assert!(found.iter().any(|a| a.ip().is_loopback() && a.port() == 7700), "{found:?}");
        let none = Discover::parse("x=no-such-host.invalid:1").unwrap().unwrap();
        assert!(none.addresses().await.is_empty());
    }
}
