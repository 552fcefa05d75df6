//! What rules need beyond the fleet, fetched by the leader only and only
//! while a rule needs it: the update check (every 15 minutes), each host's
//! audit verification (every 10 minutes), and the logs of the containers a
//! log rule covers (followed, at most [`FOLLOWS_MAX`] at once, lines matched
//! here and never stored or sent).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use shared::{AuditVerification, Call, ContainerState, LogLine, UpdateStatus, Verb};

use super::rules::{compile, Condition, Scope};
use super::{lock, now_ms, Alerts};
use crate::model::HostStatus;
use crate::server::sidecar::Sidecar;
use crate::server::Core;

/// Containers whose logs are followed at once, at most.
pub const FOLLOWS_MAX: usize = 32;
const UPDATES_EVERY: Duration = Duration::from_secs(15 * 60);
const AUDIT_EVERY: Duration = Duration::from_secs(10 * 60);
const LOOK_EVERY: Duration = Duration::from_secs(5);
/// The longest event block kept while reading a log stream.
const BLOCK_MAX: usize = 256 * 1024;

/// A log rule's pattern and scope.
type Patterns = Arc<Vec<(i64, Scope, regex::Regex)>>;

/// A container to follow: its name, and the (rule, pattern) pairs that cover it.
type Wanted = (String, Vec<(i64, String)>);

struct Follow {
    task: tokio::task::JoinHandle<()>,
    /// The patterns it was started with (a change restarts it).
    rules: Vec<(i64, String)>,
}

pub async fn watch(alerts: Arc<Alerts>, core: Arc<Core>) {
    let mut updates_at: Option<Instant> = None;
    let mut audit_at: Option<Instant> = None;
    let mut follows: HashMap<(String, String), Follow> = HashMap::new();
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        if !alerts.leading.load(Ordering::Relaxed) {
            for (_, f) in follows.drain() {
                f.task.abort();
            }
            (updates_at, audit_at) = (None, None);
            *lock(&alerts.known) = Default::default();
            continue;
        }
        let Ok(cfg) = alerts.config(false).await else { continue };
        let wanted = |kind: &str| cfg.rules.iter().any(|(_, r)| r.enabled && r.condition.kind() == kind);
        if wanted("update_available") && updates_at.is_none_or(|t| t.elapsed() >= UPDATES_EVERY) {
            updates_at = Some(Instant::now());
            let entries = core.update_entries().await;
            let set = entries
                .iter()
                .filter(|(_, c)| c.status == UpdateStatus::UpdateAvailable)
                .map(|(h, c)| (h.clone(), c.id.clone()))
                .collect();
            lock(&alerts.known).updates = Some(set);
        }
        if wanted("audit_broken") && audit_at.is_none_or(|t| t.elapsed() >= AUDIT_EVERY) {
            audit_at = Some(Instant::now());
            let hub = core.fleet.get();
            for name in hub.names() {
                let Some(h) = hub.host(&name) else { continue };
                let v = h.call::<AuditVerification>(&Call::new(Verb::AuditVerify, &[]), None, None).await;
                let mut known = lock(&alerts.known);
                match v {
                    Ok(v) => known.audit_ok.insert(name, v.ok),
                    Err(_) => known.audit_ok.remove(&name),
                };
            }
        }
        // The logs to follow: running containers a log rule covers, on hosts that answer.
        let patterns: Patterns = Arc::new(
            cfg.rules
                .iter()
                .filter(|(_, r)| r.enabled)
                .filter_map(|(id, r)| match &r.condition {
                    Condition::LogMatch { pattern, .. } => compile(pattern).ok().map(|re| (*id, r.scope.clone(), re)),
                    _ => None,
                })
                .collect(),
        );
        // (host, container id) → its name and the (rule, pattern) pairs that cover it.
        let mut want: HashMap<(String, String), Wanted> = HashMap::new();
        if !patterns.is_empty() {
            core.fleet.get().with_fleet(|f| {
                for h in f.hosts.iter().filter(|h| matches!(h.status, HostStatus::Connected)) {
                    for c in h.containers.iter().filter(|c| c.state == ContainerState::Running) {
                        let rules: Vec<(i64, String)> = patterns
                            .iter()
                            .filter(|(_, s, _)| s.holds(&h.name, c))
                            .map(|(id, _, re)| (*id, re.as_str().to_owned()))
                            .collect();
                        if !rules.is_empty() && want.len() < FOLLOWS_MAX {
                            want.insert((h.name.clone(), c.id.clone()), (c.name.clone(), rules));
                        }
                    }
                }
            });
        }
        follows.retain(|k, f| {
            let keep = want.get(k).is_some_and(|(_, rules)| *rules == f.rules) && !f.task.is_finished();
            if !keep {
                f.task.abort();
            }
            keep
        });
        let hub = core.fleet.get();
        for ((host, id), (name, rules)) in want {
            if follows.contains_key(&(host.clone(), id.clone())) {
                continue;
            }
            let Some(sidecar) = hub.host(&host) else { continue };
            let mine: Patterns =
                Arc::new(patterns.iter().filter(|(rid, _, _)| rules.iter().any(|(r, _)| r == rid)).cloned().collect());
            let task = tokio::spawn(follow(alerts.clone(), sidecar, host.clone(), id.clone(), name, mine));
            follows.insert((host, id), Follow { task, rules });
        }
    }
}

/// Follows one container's log from now on, noting each rule a line matches.
async fn follow(
    alerts: Arc<Alerts>,
    sidecar: Arc<Sidecar>,
    host: String,
    id: String,
    name: String,
    patterns: Patterns,
) {
    loop {
        let call = Call::new(Verb::Logs, &[&id]).query("follow", true).query("tail", 0);
        if let Ok(resp) = sidecar.stream(&call, None, None).await {
            let mut body = std::pin::pin!(resp.bytes_stream());
            let mut buf: Vec<u8> = Vec::new();
            while let Some(Ok(chunk)) = body.next().await {
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
                    let block: Vec<u8> = buf.drain(..pos + 2).collect();
                    let text = String::from_utf8_lossy(&block);
                    if !text.starts_with("event: line") {
                        continue;
                    }
                    let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
                    let Ok(line) = serde_json::from_str::<LogLine>(data) else { continue };
                    for (rule, _, re) in patterns.iter() {
                        if re.is_match(&line.line) {
                            lock(&alerts.known).log_hits.insert((*rule, host.clone(), name.clone()), now_ms());
                        }
                    }
                }
                if buf.len() > BLOCK_MAX {
                    buf.clear();
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
