//! Forward auth: `Remote-User`/`Remote-Groups` (names configurable) from a
//! trusted proxy, optionally proven by a secret header the proxy adds; the
//! start-up check that a trusted range does not cover the gateway (through
//! which anything on the edge network or the published port arrives).

use std::net::{IpAddr, Ipv4Addr};

use axum::http::{HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

use super::auth::{random_token, CurrentUser};
use crate::types::Role;

/// The header a proxy sets to prove it is the proxy (`DOCKWARD_FORWARD_AUTH_SECRET`).
pub const SECRET_HEADER: &str = "x-dockward-proxy-secret";

/// Forward-auth settings: trusted proxies, the group → role mapping and the
/// optional shared secret.
pub struct ForwardAuth {
    pub proxies: Vec<ipnet::IpNet>,
    pub user_header: String,
    pub groups_header: String,
    pub group_roles: Vec<(String, Role)>,
    /// When set, identity headers count only with this value in [`SECRET_HEADER`].
    pub secret: Option<String>,
    /// Per-process key for deriving forward-auth users' CSRF tokens.
    pub csrf_key: String,
}

/// Why a forward-auth request is refused, and with which status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An identity header sent twice: which one is believed would depend on the reader (400).
    Duplicate,
    /// The proxy named a user that is not a valid name (403).
    BadName,
    /// None of the groups maps to a role (403).
    NoRole,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Self::Duplicate => StatusCode::BAD_REQUEST,
            Self::BadName | Self::NoRole => StatusCode::FORBIDDEN,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::Duplicate => "an identity header appears more than once",
            Self::BadName => "the proxy named an invalid user",
            Self::NoRole => "none of your groups grants access to dockward",
        }
    }
}

/// Parses a list of CIDRs or bare addresses.
pub fn parse_nets(what: &str, items: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{what}: {s:?} is not a CIDR or address"))
        })
        .collect()
}

impl ForwardAuth {
    pub fn parse(
        proxies: &[String],
        user_header: &str,
        groups_header: &str,
        mapping: &str,
        secret: Option<String>,
    ) -> Result<Self, String> {
        let proxies = parse_nets("DOCKWARD_TRUSTED_PROXIES", proxies)?;
        let mut group_roles = Vec::new();
        for item in mapping.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (g, r) = item
                .split_once('=')
                .ok_or_else(|| format!("DOCKWARD_AUTH_GROUP_ROLES entry {item:?} is not group=role"))?;
            let role = Role::parse(r)
                .ok_or_else(|| format!("DOCKWARD_AUTH_GROUP_ROLES: unknown role {r:?} (viewer, operator, admin)"))?;
            group_roles.push((g.trim().to_owned(), role));
        }
        let secret = secret.map(|s| s.trim_end_matches(['\n', '\r']).to_owned());
        if secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err("DOCKWARD_FORWARD_AUTH_SECRET: use at least 32 characters".into());
        }
        Ok(Self {
            proxies,
            user_header: user_header.to_ascii_lowercase(),
            groups_header: groups_header.to_ascii_lowercase(),
            group_roles,
            secret,
            csrf_key: random_token(),
        })
    }

    pub fn enabled(&self) -> bool {
        !self.proxies.is_empty()
    }

    /// The user named by a trusted proxy, with the strongest role their
    /// groups map to. `None`: no forward-auth identity (not from a trusted
    /// proxy, no user header, or the shared secret missing or wrong).
    pub fn user(&self, peer: IpAddr, headers: &HeaderMap) -> Option<Result<CurrentUser, Refusal>> {
        // Two copies of an identity header: refused whoever sent them, before
        // anything else (a proxy that appends rather than replaces is misconfigured).
        if headers.get_all(&self.user_header).iter().count() > 1
            || headers.get_all(&self.groups_header).iter().count() > 1
        {
            return Some(Err(Refusal::Duplicate));
        }
        if !self.proxies.iter().any(|n| n.contains(&peer)) {
            return None;
        }
        if let Some(secret) = &self.secret {
            let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
            if !bool::from(given.ct_eq(secret.as_bytes())) {
                return None;
            }
        }
        let name = headers.get(&self.user_header)?.to_str().ok()?.trim().to_owned();
        if !super::users::valid_name(&name) {
            return Some(Err(Refusal::BadName));
        }
        let groups = headers.get(&self.groups_header).and_then(|v| v.to_str().ok()).unwrap_or("");
        let role = groups
            .split([',', ' '])
            .filter(|g| !g.is_empty())
            .filter_map(|g| self.group_roles.iter().find(|(n, _)| n == g).map(|(_, r)| *r))
            .max();
        let Some(role) = role else { return Some(Err(Refusal::NoRole)) };
        let csrf = hex::encode(csrf_digest(&format!("{}:{name}", self.csrf_key)));
        Some(Ok(CurrentUser::new(name, super::access::Access::fleet(role), csrf, None)))
    }

    /// The trusted ranges that contain `gateway`: anything that reaches the
    /// console through it (the published port, the edge network) would be
    /// believed. Empty when the setup is safe.
    pub fn ranges_covering(&self, gateway: IpAddr) -> Vec<ipnet::IpNet> {
        self.proxies.iter().filter(|n| n.contains(&gateway)).copied().collect()
    }
}

/// The CSRF token of a forward-auth user: SHA-256 of a per-process key and the name.
fn csrf_digest(s: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes()).into()
}

/// The default route's gateway from `/proc/net/route` text (addresses are
/// little-endian hex; the default route has destination and mask 0).
pub fn default_gateway(route_table: &str) -> Option<Ipv4Addr> {
    route_table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dest, gw, mask) = (f.get(1)?, f.get(2)?, f.get(7)?);
        if *dest != "00000000" || *mask != "00000000" {
            return None;
        }
        let raw = u32::from_str_radix(gw, 16).ok()?;
        (raw != 0).then(|| Ipv4Addr::from(raw.swap_bytes()))
    })
}

/// At start: warn when a trusted range covers this container's default gateway.
pub fn warn_if_gateway_trusted(fa: &ForwardAuth) {
    if !fa.enabled() {
        return;
    }
    let Some(gw) = std::fs::read_to_string("/proc/net/route").ok().as_deref().and_then(default_gateway) else {
        return;
    };
    let risky = fa.ranges_covering(IpAddr::V4(gw));
    if !risky.is_empty() {
        let ranges: Vec<String> = risky.iter().map(ToString::to_string).collect();
        tracing::warn!(
            gateway = %gw,
            ranges = %ranges.join(","),
            secret = fa.secret.is_some(),
            "DOCKWARD_TRUSTED_PROXIES covers the default gateway: connections through the published port or from the \
             edge network come from there and could claim any user; trust only the proxy's own address and set \
             DOCKWARD_FORWARD_AUTH_SECRET_FILE (SECURITY.md, forward auth)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn fa(secret: Option<&str>) -> ForwardAuth {
        ForwardAuth::parse(
            &["10.0.0.0/8".into()],
            "Remote-User",
            "Remote-Groups",
            "admins=admin,ops=operator",
            secret.map(String::from),
        )
        .unwrap()
    }

    #[test]
    fn forward_auth_trusts_only_proxies_and_maps_groups() {
        let fa = fa(None);
        let mut h = HeaderMap::new();
        h.insert("remote-user", HeaderValue::from_static("carol"));
        h.insert("remote-groups", HeaderValue::from_static("staff,ops"));
        let u = fa.user("10.1.2.3".parse().unwrap(), &h).unwrap().unwrap();
        assert_eq!((u.name.as_str(), u.top()), ("carol", Some(Role::Operator)));
        assert!(fa.user("192.0.2.1".parse().unwrap(), &h).is_none(), "untrusted address");
        h.insert("remote-groups", HeaderValue::from_static("nobody"));
        assert_eq!(fa.user("10.1.2.3".parse().unwrap(), &h).unwrap().unwrap_err(), Refusal::NoRole);
        assert!(ForwardAuth::parse(&["nope".into()], "a", "b", "", None).is_err());
        assert!(ForwardAuth::parse(&[], "a", "b", "x=root", None).is_err());
        assert!(ForwardAuth::parse(&[], "a", "b", "", Some("short".into())).is_err());
    }

    #[test]
    fn duplicate_identity_headers_are_refused() {
        let fa = fa(None);
        let peer = "10.1.2.3".parse().unwrap();
        let mut h = HeaderMap::new();
        h.append("remote-user", HeaderValue::from_static("carol"));
        h.append("remote-groups", HeaderValue::from_static("ops"));
        assert!(fa.user(peer, &h).unwrap().is_ok());
        h.append("remote-groups", HeaderValue::from_static("admins"));
        assert_eq!(fa.user(peer, &h).unwrap().unwrap_err(), Refusal::Duplicate);
        assert_eq!(Refusal::Duplicate.status(), StatusCode::BAD_REQUEST);
        let mut h = HeaderMap::new();
        h.append("remote-user", HeaderValue::from_static("carol"));
        h.append("remote-user", HeaderValue::from_static("admin"));
        h.append("remote-groups", HeaderValue::from_static("ops"));
        assert_eq!(fa.user(peer, &h).unwrap().unwrap_err(), Refusal::Duplicate);
    }

    #[test]
    fn with_a_secret_only_requests_carrying_it_have_an_identity() {
        let secret = "a-proxy-secret-0123456789abcdef0123456789";
        let fa = fa(Some(secret));
        let peer = "10.1.2.3".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("remote-user", HeaderValue::from_static("carol"));
        h.insert("remote-groups", HeaderValue::from_static("admins"));
        assert!(fa.user(peer, &h).is_none(), "no secret header");
        h.insert(SECRET_HEADER, HeaderValue::from_static("a-proxy-secret-0123456789abcdef012345678X"));
        assert!(fa.user(peer, &h).is_none(), "wrong secret");
        h.insert(SECRET_HEADER, HeaderValue::from_static("a-proxy-secret"));
        assert!(fa.user(peer, &h).is_none(), "a prefix of the secret");
        h.insert(SECRET_HEADER, HeaderValue::from_str(secret).unwrap());
        assert_eq!(fa.user(peer, &h).unwrap().unwrap().top(), Some(Role::Admin));
    }

    #[test]
    fn the_default_gateway_is_read_from_the_route_table_and_checked() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth1\t0012A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_gateway(table), Some(Ipv4Addr::new(172, 17, 0, 1)));
        assert_eq!(default_gateway("Iface\tDestination\n"), None);
        let gw = IpAddr::V4(Ipv4Addr::new(172, 17, 0, 1));
        let wide = ForwardAuth::parse(&["172.16.0.0/12".into(), "10.0.0.5".into()], "a", "b", "", None).unwrap();
        assert_eq!(wide.ranges_covering(gw), vec!["172.16.0.0/12".parse::<ipnet::IpNet>().unwrap()]);
        let narrow = ForwardAuth::parse(&["172.17.0.5/32".into()], "a", "b", "", None).unwrap();
        assert!(narrow.ranges_covering(gw).is_empty());
    }
}
