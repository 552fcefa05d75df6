//! Rule evaluation, pure: the published fleet and what else is known (update
//! checks, audit verifications, log matches) in; what fires now, and which
//! open incidents cannot be judged (their host is down, their data not in
//! yet), out. What a condition needs to remember between rounds (since when
//! it holds, a container's restarts) lives in [`Engine`]; it is rebuilt when
//! a console starts or takes over, so an incident open in the store is never
//! resolved on missing memory: it is *held* until the engine knows.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use shared::{ContainerState, ContainerSummary, Health};

use super::rules::{Condition, Rule};
use crate::model::{Fleet, HostStatus};

/// Restarts remembered per container (a restart loop needs no more).
const RESTARTS_KEPT: usize = 1000;

/// What an incident is about: made when it fires, stored with it, sent in
/// its notifications. Names, states and codes only: never environment
/// values, log lines or secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: i64,
    pub rule_name: String,
    pub kind: String,
    pub host: String,
    /// The container's name, or the host's for host rules.
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    pub title: String,
    pub detail: String,
}

impl Finding {
    /// The incident it belongs to: one per rule and subject.
    pub fn key(&self) -> String {
        key(self.rule, &self.host, &self.subject)
    }
}

pub fn key(rule: i64, host: &str, subject: &str) -> String {
    format!("{rule}/{host}/{subject}")
}

/// The rule and host of an incident's key.
pub fn key_parts(key: &str) -> Option<(i64, &str)> {
    let mut parts = key.splitn(3, '/');
    let rule = parts.next()?.parse().ok()?;
    Some((rule, parts.next()?))
}

/// What a round knows beside the fleet.
#[derive(Default)]
pub struct Known {
    /// `(host, container id)` with an update available; `None` before the first check.
    pub updates: Option<HashSet<(String, String)>>,
    /// Per host: whether its audit chain verified (absent: not asked yet, or it failed).
    pub audit_ok: HashMap<String, bool>,
    /// Per (rule, host, container name): when a log line last matched (Unix ms).
    pub log_hits: HashMap<(i64, String, String), i64>,
}

/// What one round found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub firing: Vec<Finding>,
    /// Open incidents' keys that cannot be judged this round: left as they are.
    pub held: HashSet<String>,
}

struct Track {
    count: i64,
    since_ms: i64,
    restarts: VecDeque<i64>,
    round: u64,
}

/// What evaluation remembers between rounds.
pub struct Engine {
    started_ms: i64,
    round: u64,
    /// Since when a condition has held, by incident key (the round it was last true).
    since: HashMap<String, (i64, u64)>,
    /// Restarts per (host, container id).
    restarts: HashMap<(String, String), Track>,
    /// Since when a host has not been connected.
    host_bad: HashMap<String, i64>,
}

impl Engine {
    pub fn new(now_ms: i64) -> Self {
        Engine {
            started_ms: now_ms,
            round: 0,
            since: HashMap::new(),
            restarts: HashMap::new(),
            host_bad: HashMap::new(),
        }
    }

    /// Whether `true` has held for `for_s` (or the incident is open already).
    fn held(&mut self, key: &str, for_s: u32, now: i64, open: bool) -> bool {
        let round = self.round;
        let since = match self.since.get_mut(key) {
            Some(e) => {
                e.1 = round;
                e.0
            }
            None => {
                self.since.insert(key.to_owned(), (now, round));
                now
            }
        };
        open || now - since >= i64::from(for_s) * 1000
    }

    /// One round: `rules` (id, rule) over `fleet`; `open` holds the keys of
    /// firing incidents.
    pub fn evaluate(
        &mut self,
        fleet: &Fleet,
        rules: &[(i64, Rule)],
        known: &Known,
        open: &HashSet<String>,
        now: i64,
    ) -> Outcome {
        self.round += 1;
        let round = self.round;
        let mut out = Outcome::default();
        let mut connected: HashSet<&str> = HashSet::new();
        for h in &fleet.hosts {
            if matches!(h.status, HostStatus::Connected) {
                connected.insert(&h.name);
                self.host_bad.remove(&h.name);
                for c in &h.containers {
                    self.track_restarts(&h.name, c, now);
                }
            } else {
                self.host_bad.entry(h.name.clone()).or_insert(now);
            }
        }
        let rules: Vec<&(i64, Rule)> = rules.iter().filter(|(_, r)| r.enabled).collect();
        for (id, rule) in &rules {
            if rule.condition.of_hosts() {
                self.host_rule(*id, rule, fleet, known, open, now, &mut out);
                continue;
            }
            for h in fleet.hosts.iter().filter(|h| connected.contains(h.name.as_str())) {
                for c in h.containers.iter().filter(|c| rule.scope.holds(&h.name, c)) {
                    self.container_rule(*id, rule, &h.name, c, known, open, now, &mut out);
                }
            }
        }
        // Container incidents of hosts that cannot be seen wait for them (one
        // alert for a host that is down, not one per container).
        for k in open {
            if let Some((_, host)) = key_parts(k) {
                if !connected.contains(host) && fleet.hosts.iter().any(|h| h.name == host) {
                    out.held.insert(k.clone());
                }
            }
        }
        // What this round did not touch is forgotten, but for hosts that could
        // not be seen (one failed poll must not reset a restart loop's count
        // or how long a condition has held).
        let unseen = |host: &str| !connected.contains(host) && fleet.hosts.iter().any(|x| x.name == host);
        self.since.retain(|k, (_, r)| *r == round || key_parts(k).is_some_and(|(_, h)| unseen(h)));
        self.restarts.retain(|(h, _), t| t.round == round || unseen(h));
        self.host_bad.retain(|h, _| fleet.hosts.iter().any(|x| &x.name == h));
        out
    }

    fn track_restarts(&mut self, host: &str, c: &ContainerSummary, now: i64) {
        let round = self.round;
        let t = self.restarts.entry((host.to_owned(), c.id.clone())).or_insert_with(|| Track {
            count: c.restart_count,
            since_ms: now,
            restarts: VecDeque::new(),
            round,
        });
        t.round = round;
        if c.restart_count > t.count {
            for _ in 0..(c.restart_count - t.count).min(RESTARTS_KEPT as i64) {
                t.restarts.push_back(now);
            }
            while t.restarts.len() > RESTARTS_KEPT {
                t.restarts.pop_front();
            }
        }
        t.count = c.restart_count;
    }

    #[allow(clippy::too_many_arguments)]
    fn host_rule(
        &mut self,
        id: i64,
        rule: &Rule,
        fleet: &Fleet,
        known: &Known,
        open: &HashSet<String>,
        now: i64,
        out: &mut Outcome,
    ) {
        for h in fleet.hosts.iter().filter(|h| rule.scope.holds_host(&h.name)) {
            let k = key(id, &h.name, &h.name);
            let is_open = open.contains(&k);
            let fire = |title: String, detail: String| Finding {
                rule: id,
                rule_name: rule.name.clone(),
                kind: rule.condition.kind().to_owned(),
                host: h.name.clone(),
                subject: h.name.clone(),
                app: None,
                title,
                detail,
            };
            match &rule.condition {
                Condition::HostDown { for_s } => match &h.status {
                    HostStatus::IdentityChanged { presented } => out.firing.push(fire(
                        format!("{}: its sidecar presents a certificate that is not pinned", h.name),
                        format!("presented {presented}; nothing is sent to it until its pin is updated"),
                    )),
                    HostStatus::Connected => {}
                    status => {
                        let since = self.host_bad.get(&h.name).copied().unwrap_or(now);
                        if is_open || now - since >= i64::from(*for_s) * 1000 {
                            let why = match status {
                                HostStatus::Down { error, .. } => error.clone(),
                                _ => "no answer".to_owned(),
                            };
                            out.firing.push(fire(
                                format!("{} is unreachable", h.name),
                                format!("for {} s: {why}", (now - since) / 1000),
                            ));
                        }
                    }
                },
                Condition::AuditBroken => match known.audit_ok.get(&h.name) {
                    Some(false) => out.firing.push(fire(
                        format!("{}: its audit chain does not verify", h.name),
                        "the sidecar's audit log was changed or cut: see its audit verify report".to_owned(),
                    )),
                    Some(true) => {}
                    None if is_open => {
                        out.held.insert(k);
                    }
                    None => {}
                },
                _ => {}
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn container_rule(
        &mut self,
        id: i64,
        rule: &Rule,
        host: &str,
        c: &ContainerSummary,
        known: &Known,
        open: &HashSet<String>,
        now: i64,
        out: &mut Outcome,
    ) {
        let stopped = matches!(c.state, ContainerState::Exited | ContainerState::Dead);
        // Cheap tests first: most containers are fine, and no key is made for them.
        let found: Option<(String, String)> = match &rule.condition {
            Condition::Exited => {
                let should_run = matches!(c.restart_policy.as_str(), "always" | "unless-stopped");
                let failed = c.exit_code.is_some_and(|code| code != 0);
                (stopped && (failed || should_run)).then(|| {
                    let code = c.exit_code.map_or("unknown".to_owned(), |n| n.to_string());
                    (
                        format!("{} on {host} exited (code {code})", c.name),
                        format!("exit code {code}; restart policy {}", policy(c)),
                    )
                })
            }
            Condition::OomKilled => (c.oom_killed && c.state != ContainerState::Running).then(|| {
                (
                    format!("{} on {host} was killed: out of memory", c.name),
                    "the kernel's OOM killer ended it".to_owned(),
                )
            }),
            Condition::Unhealthy { for_s } => {
                if c.health != Health::Unhealthy {
                    None
                } else {
                    let k = key(id, host, &c.name);
                    let is_open = open.contains(&k);
                    self.held(&k, *for_s, now, is_open).then(|| {
                        (
                            format!("{} on {host} is unhealthy", c.name),
                            format!("its healthcheck fails (for at least {for_s} s)"),
                        )
                    })
                }
            }
            Condition::Cpu { percent, for_s } => match c.stats.as_ref().and_then(|s| s.cpu_percent) {
                None => return self.hold_if_open(id, host, c, open, out),
                Some(cpu) if cpu <= *percent => None,
                Some(cpu) => {
                    let k = key(id, host, &c.name);
                    let is_open = open.contains(&k);
                    self.held(&k, *for_s, now, is_open).then(|| {
                        (format!("{} on {host}: CPU {cpu:.0} %", c.name), format!("above {percent} % for {for_s} s"))
                    })
                }
            },
            Condition::Memory { percent, for_s } => match c.stats.as_ref().filter(|s| s.memory_limit_bytes > 0) {
                None => return self.hold_if_open(id, host, c, open, out),
                Some(s) => {
                    let used = s.memory_bytes as f64 * 100.0 / s.memory_limit_bytes as f64;
                    if used <= *percent {
                        None
                    } else {
                        let k = key(id, host, &c.name);
                        let is_open = open.contains(&k);
                        self.held(&k, *for_s, now, is_open).then(|| {
                            (
                                format!("{} on {host}: memory {used:.0} % of its limit", c.name),
                                format!("above {percent} % for {for_s} s"),
                            )
                        })
                    }
                }
            },
            Condition::RestartLoop { restarts, window_s } => {
                let window = i64::from(*window_s) * 1000;
                let Some(t) = self.restarts.get(&(host.to_owned(), c.id.clone())) else { return };
                let recent = t.restarts.iter().rev().take_while(|at| now - **at < window).count();
                if recent >= *restarts as usize {
                    Some((
                        format!("{} on {host} is restart-looping", c.name),
                        format!("{recent} restarts in the last {window_s} s (restart count {})", c.restart_count),
                    ))
                } else {
                    let k = key(id, host, &c.name);
                    if open.contains(&k) {
                        // Over once it has gone a whole window without a restart,
                        // as watched by this engine (a new one cannot tell sooner).
                        if recent > 0 || now - t.since_ms < window {
                            out.held.insert(k);
                        }
                    }
                    None
                }
            }
            Condition::UpdateAvailable => match &known.updates {
                None => return self.hold_if_open(id, host, c, open, out),
                Some(u) => u
                    .contains(&(host.to_owned(), c.id.clone()))
                    .then(|| (format!("{} on {host}: an update is available", c.name), format!("image {}", c.image))),
            },
            Condition::LogMatch { hold_s, .. } => {
                let hold = i64::from(*hold_s) * 1000;
                match known.log_hits.get(&(id, host.to_owned(), c.name.clone())) {
                    Some(at) if now - at < hold => Some((
                        format!("{} on {host}: a log line matched \u{201c}{}\u{201d}", c.name, rule.name),
                        format!("the last match was {} s ago", (now - at) / 1000),
                    )),
                    _ => {
                        if now - self.started_ms < hold {
                            return self.hold_if_open(id, host, c, open, out);
                        }
                        None
                    }
                }
            }
            Condition::HostDown { .. } | Condition::AuditBroken => None,
        };
        if let Some((title, detail)) = found {
            out.firing.push(Finding {
                rule: id,
                rule_name: rule.name.clone(),
                kind: rule.condition.kind().to_owned(),
                host: host.to_owned(),
                subject: c.name.clone(),
                app: c.compose_project.clone(),
                title,
                detail,
            });
        }
    }

    /// No data for this condition this round: an open incident is held, and
    /// how long the condition has held so far is kept (not reset by a gap).
    fn hold_if_open(&mut self, id: i64, host: &str, c: &ContainerSummary, open: &HashSet<String>, out: &mut Outcome) {
        if open.is_empty() && self.since.is_empty() {
            return;
        }
        let k = key(id, host, &c.name);
        if let Some(e) = self.since.get_mut(&k) {
            e.1 = self.round;
        }
        if open.contains(&k) {
            out.held.insert(k);
        }
    }
}

fn policy(c: &ContainerSummary) -> &str {
    if c.restart_policy.is_empty() {
        "no"
    } else {
        &c.restart_policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::alerts::rules::Scope;
    use shared::ContainerState;

    fn rule(condition: Condition) -> Rule {
        Rule { name: "r".into(), enabled: true, condition, scope: Scope::Fleet, channels: vec![] }
    }

    fn fleet_of(containers: Vec<ContainerSummary>) -> Fleet {
        let mut f = crate::testing::fleet(containers);
        f.hosts[0].status = HostStatus::Connected;
        f
    }

    fn exited(name: &str, code: i64, policy: &str) -> ContainerSummary {
        let mut c = crate::testing::container(name, Some("shop"), ContainerState::Exited, "Exited");
        c.exit_code = Some(code);
        c.restart_policy = policy.into();
        c
    }

    fn keys(o: &Outcome) -> Vec<String> {
        o.firing.iter().map(Finding::key).collect()
    }

    #[test]
    fn exits_fire_unless_a_one_shot_job_succeeded() {
        let rules = [(1, rule(Condition::Exited))];
        let f = fleet_of(vec![
            exited("killed", 137, "no"),
            exited("job", 0, "no"),
            exited("job2", 0, "on-failure"),
            exited("svc", 0, "always"),
            crate::testing::container("up", None, ContainerState::Running, "Up"),
        ]);
        let mut e = Engine::new(0);
        let o = e.evaluate(&f, &rules, &Known::default(), &HashSet::new(), 1000);
        assert_eq!(keys(&o), vec!["1/h1/killed".to_owned(), "1/h1/svc".to_owned()]);
        assert!(o.firing[0].title.contains("code 137"), "{:?}", o.firing[0]);
    }

    #[test]
    fn a_condition_must_hold_for_its_time_unless_already_open() {
        let rules = [(2, rule(Condition::Unhealthy { for_s: 30 }))];
        let mut c = crate::testing::container("web", None, ContainerState::Running, "Up");
        c.health = Health::Unhealthy;
        let f = fleet_of(vec![c]);
        let mut e = Engine::new(0);
        let none = HashSet::new();
        assert!(e.evaluate(&f, &rules, &Known::default(), &none, 0).firing.is_empty());
        assert!(e.evaluate(&f, &rules, &Known::default(), &none, 29_000).firing.is_empty());
        assert_eq!(e.evaluate(&f, &rules, &Known::default(), &none, 30_000).firing.len(), 1);
        // A new engine (a restart) keeps an open incident firing at once.
        let open: HashSet<String> = ["2/h1/web".to_owned()].into();
        assert_eq!(Engine::new(40_000).evaluate(&f, &rules, &Known::default(), &open, 40_000).firing.len(), 1);
    }

    #[test]
    fn a_restart_loop_counts_restarts_in_its_window_and_ends_after_a_quiet_one() {
        let rules = [(3, rule(Condition::RestartLoop { restarts: 3, window_s: 60 }))];
        let mut c = crate::testing::container("loop", None, ContainerState::Running, "Up");
        let mut e = Engine::new(0);
        let none = HashSet::new();
        let mut at = 0;
        for n in 0..3 {
            c.restart_count = n;
            at += 1000;
            assert!(e.evaluate(&fleet_of(vec![c.clone()]), &rules, &Known::default(), &none, at).firing.is_empty());
        }
        c.restart_count = 3;
        let o = e.evaluate(&fleet_of(vec![c.clone()]), &rules, &Known::default(), &none, 5000);
        assert_eq!(keys(&o), vec!["3/h1/loop".to_owned()]);
        let open: HashSet<String> = keys(&o).into_iter().collect();
        // Fewer than three recent restarts: not firing, but held while any is in the window.
        let o = e.evaluate(&fleet_of(vec![c.clone()]), &rules, &Known::default(), &open, 63_500);
        assert!(o.firing.is_empty() && o.held.contains("3/h1/loop"), "{o:?}");
        let o = e.evaluate(&fleet_of(vec![c.clone()]), &rules, &Known::default(), &open, 66_000);
        assert!(o.firing.is_empty() && o.held.is_empty(), "{o:?}");
    }

    #[test]
    fn a_host_down_is_one_alert_and_holds_its_containers_incidents() {
        let rules = [(1, rule(Condition::Exited)), (9, rule(Condition::HostDown { for_s: 10 }))];
        let mut f = fleet_of((0..30).map(|i| exited(&format!("c{i}"), 1, "no")).collect());
        f.hosts[0].status = HostStatus::Down { error: "connection refused".into(), age_s: Some(3), engine: None };
        let open: HashSet<String> = ["1/h1/c0".to_owned()].into();
        let mut e = Engine::new(0);
        assert!(e.evaluate(&f, &rules, &Known::default(), &open, 0).firing.is_empty());
        let o = e.evaluate(&f, &rules, &Known::default(), &open, 10_000);
        assert_eq!(keys(&o), vec!["9/h1/h1".to_owned()]);
        assert!(o.held.contains("1/h1/c0"));
    }

    #[test]
    fn a_round_without_the_host_keeps_its_restarts_and_timers() {
        let rules = [
            (3, rule(Condition::RestartLoop { restarts: 3, window_s: 600 })),
            (4, rule(Condition::Cpu { percent: 50.0, for_s: 30 })),
        ];
        let mut c = crate::testing::container("loop", None, ContainerState::Running, "Up");
        c.stats = Some(shared::StatsSample {
            id: c.id.clone(),
            time_ms: 0,
            cpu_percent: Some(90.0),
            memory_bytes: 1,
            memory_limit_bytes: 10,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            block_read_bytes: 0,
            block_write_bytes: 0,
            pids: 1,
        });
        let (mut e, none) = (Engine::new(0), HashSet::new());
        for (n, at) in [(0, 0), (1, 1_000), (2, 2_000)] {
            c.restart_count = n;
            assert!(e.evaluate(&fleet_of(vec![c.clone()]), &rules, &Known::default(), &none, at).firing.is_empty());
        }
        let mut down = fleet_of(vec![c.clone()]);
        down.hosts[0].status = HostStatus::Down { error: "timeout".into(), age_s: Some(1), engine: None };
        assert!(e.evaluate(&down, &rules, &Known::default(), &none, 3_000).firing.is_empty());
        c.restart_count = 3;
        let o = e.evaluate(&fleet_of(vec![c.clone()]), &rules, &Known::default(), &none, 30_000);
        let mut k = keys(&o);
        k.sort();
        assert_eq!(k, ["3/h1/loop", "4/h1/loop"], "both survived the round the host was down");
    }

    #[test]
    fn missing_data_holds_an_open_incident_rather_than_ending_it() {
        let rules = [(4, rule(Condition::Cpu { percent: 50.0, for_s: 0 }))];
        let c = crate::testing::container("busy", None, ContainerState::Running, "Up");
        let open: HashSet<String> = ["4/h1/busy".to_owned()].into();
        let o = Engine::new(0).evaluate(&fleet_of(vec![c]), &rules, &Known::default(), &open, 1);
        assert!(o.firing.is_empty() && o.held.contains("4/h1/busy"));
    }

    #[test]
    fn scopes_and_disabled_rules_are_respected() {
        let mut other = rule(Condition::Exited);
        other.scope = Scope::parse("app:elsewhere").expect("scope");
        let mut off = rule(Condition::Exited);
        off.enabled = false;
        let rules = [(1, other), (2, off)];
        let o = Engine::new(0).evaluate(
            &fleet_of(vec![exited("x", 1, "no")]),
            &rules,
            &Known::default(),
            &HashSet::new(),
            0,
        );
        assert!(o.firing.is_empty());
    }
}
