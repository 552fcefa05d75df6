//! Alerts: rules over the fleet, incidents, and notifications to the
//! channels an admin configured. Everything lasting is in the store
//! (`store/alerts.rs`); with several replicas on one PostgreSQL store, one
//! leads ([`leader`]: an advisory lock) and only it evaluates and sends.
//!
//! ```text
//! fleet hub ──▶ engine (every second) ──▶ reconcile ──▶ incidents (store)
//!  known: updates, audit, log matches         │
//!                                             ▼
//!                 channels ◀── deliver ◀── outbox (store): retries, quiet hours
//! ```
//!
//! - One incident per rule and subject (a container by name, a host), and
//!   one notification when it fires and one when it resolves. A host that
//!   cannot be seen raises its own alert; its containers' incidents wait.
//! - Flapping is damped: an incident that fires again within
//!   [`FLAP_WINDOW_MS`] of resolving is reopened, said once ("flapping"),
//!   and resolves only after a quiet [`FLAP_WINDOW_MS`].
//! - A silence (until a time, by scope, maybe one rule) holds an incident's
//!   notifications; when it ends, an incident still firing is sent.
//! - The outbox is sent at least once: a console killed mid-send may send
//!   that one notification again (its `id` lets a receiver drop it).

pub mod channels;
mod deliver;
pub mod engine;
pub mod input;
mod leader;
pub mod page;
pub mod rules;
mod watch;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use super::auth::CurrentUser;
use super::store::{AlertConfig, IncidentRow, IncidentStep, OutboxRow, Store, StoreError};
use super::Core;
use crate::error::ConsoleError;
use crate::types::Role;
use channels::{Channel, Notice};
use engine::{Engine, Finding, Known};
use rules::{Rule, Scope};

/// An incident that fires again this soon after resolving is flapping.
pub const FLAP_WINDOW_MS: i64 = 10 * 60 * 1000;
/// How often rules are evaluated.
const TICK: Duration = Duration::from_secs(1);
/// Configuration changed on another replica is seen within this.
const CONFIG_FRESH: Duration = Duration::from_secs(5);
/// Resolved incidents and finished notifications are kept this long.
const KEEP_MS: i64 = 30 * 24 * 3600 * 1000;
/// Most silences at once.
pub const SILENCES_MAX: usize = 200;
/// A silence's longest span.
pub const SILENCE_MAX_S: u64 = 90 * 24 * 3600;

/// What `DOCKWARD_ALERT_*` set.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Attempts per notification before it is marked failed.
    pub attempts: u32,
    /// The console's address as users reach it (links in notifications).
    pub public_url: Option<String>,
}

/// A silence, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub until_ms: i64,
    pub scope: Scope,
    /// Only this rule's incidents; every rule's when absent.
    #[serde(default)]
    pub rule: Option<i64>,
    pub reason: String,
    pub by: String,
    pub created_ms: i64,
}

impl Silence {
    fn covers(&self, f: &Finding) -> bool {
        self.rule.is_none_or(|r| r == f.rule) && self.scope.covers(&f.host, f.app.as_deref())
    }
}

/// The configuration as last read from the store.
#[derive(Default, Clone)]
struct Config {
    rules: Arc<Vec<(i64, Rule)>>,
    channels: Arc<Vec<(i64, Channel)>>,
    silences: Arc<Vec<Silence>>,
}

impl Config {
    fn silenced(&self, f: &Finding, now: i64) -> bool {
        self.silences.iter().any(|s| s.until_ms > now && s.covers(f))
    }

    fn channel(&self, id: i64) -> Option<&Channel> {
        self.channels.iter().find(|(i, _)| *i == id).map(|(_, c)| c)
    }
}

/// An incident firing, as the leader keeps it.
struct Open {
    id: i64,
    notified: bool,
    flaps: i64,
    /// Since when a flapping incident's condition has been clear.
    clear_since: Option<i64>,
    finding: Finding,
}

pub struct Alerts {
    store: Store,
    metrics: Arc<super::metrics::Metrics>,
    enrolment: super::enrol::Enrolment,
    settings: Settings,
    sender: deliver::Sender,
    config: Mutex<(Config, Option<Instant>)>,
    /// Whether this replica leads (evaluates and sends; writes history).
    leading: super::history::Leading,
    /// Incidents firing (the header's count).
    firing: AtomicI64,
    /// Wakes the sender when something was queued.
    queued: Notify,
    known: Mutex<Known>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn store_err(e: StoreError) -> ConsoleError {
    match e {
        StoreError::ReadOnly => {
            ConsoleError::bad_input("store", "the console's store is read-only: nothing can be changed")
        }
        other => ConsoleError::internal(other.to_string()),
    }
}

/// Rules, channels and notifications are the fleet's: `role` on the fleet.
fn need(u: &CurrentUser, role: Role) -> Result<(), ConsoleError> {
    u.access.need(role, &Scope::Fleet)
}

/// Whether `u` sees an incident: its host (host rules) or its app is theirs.
fn sees_incident(u: &CurrentUser, i: &IncidentView) -> bool {
    i.finding.as_ref().is_some_and(|f| u.access.on_app(&f.host, f.app.as_deref()).is_some())
}

fn now_ms() -> i64 {
    super::store::now_ms()
}

/// An incident for a page or the API: the stored row, with what fired read
/// from its body.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    #[serde(flatten)]
    pub row: IncidentRow,
    #[serde(flatten)]
    pub finding: Option<Finding>,
}

impl From<IncidentRow> for IncidentView {
    fn from(row: IncidentRow) -> Self {
        IncidentView { finding: serde_json::from_str(&row.body).ok(), row }
    }
}

/// Everything the alerts page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub leading: bool,
    pub firing: Vec<IncidentView>,
    pub recent: Vec<IncidentView>,
    pub notifications: Vec<OutboxRow>,
    pub silences: Vec<SilenceView>,
    pub rules: Vec<RuleView>,
    /// Every channel: id, name, type, destination (no secret), enabled.
    pub channels: Vec<ChannelSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SilenceView {
    pub id: i64,
    pub until_ms: i64,
    #[serde(flatten)]
    pub silence: Silence,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    pub id: i64,
    #[serde(flatten)]
    pub rule: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelSummary {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub destination: String,
    pub enabled: bool,
}

impl Alerts {
    /// Alerts over `store`; the default rules are added to a fresh store.
    pub async fn new(
        store: Store,
        enrolment: super::enrol::Enrolment,
        metrics: Arc<super::metrics::Metrics>,
        leading: super::history::Leading,
        settings: Settings,
    ) -> Arc<Alerts> {
        if store.writable() {
            let bodies: Vec<String> = rules::defaults().iter().filter_map(|r| serde_json::to_string(r).ok()).collect();
            match store.seed_rules_once(&bodies).await {
                Ok(true) => tracing::info!(rules = bodies.len(), "alerts: the default rules were added"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "alerts: the default rules could not be added"),
            }
        }
        Arc::new(Alerts {
            store,
            metrics,
            enrolment,
            settings,
            sender: deliver::Sender::new(),
            config: Mutex::new((Config::default(), None)),
            leading,
            firing: AtomicI64::new(0),
            queued: Notify::new(),
            known: Mutex::new(Known::default()),
        })
    }

    /// Incidents firing, as last counted.
    pub fn firing_count(&self) -> i64 {
        self.firing.load(Ordering::Relaxed)
    }

    /// Reads the configuration from the store when it is older than
    /// [`CONFIG_FRESH`] (or `force`); the copy in use otherwise.
    async fn config(&self, force: bool) -> Result<Config, StoreError> {
        {
            let c = lock(&self.config);
            if !force && c.1.is_some_and(|at| at.elapsed() < CONFIG_FRESH) {
                return Ok(c.0.clone());
            }
        }
        let parse = |rows: Vec<(i64, String)>, what: &str| -> Vec<(i64, Value)> {
            rows.into_iter()
                .filter_map(|(id, body)| match serde_json::from_str::<Value>(&body) {
                    Ok(v) => Some((id, v)),
                    Err(e) => {
                        tracing::error!(id, what, error = %e, "alerts: a stored item is unreadable; ignored");
                        None
                    }
                })
                .collect()
        };
        let rules = parse(self.store.alert_config(AlertConfig::Rules).await?, "rule")
            .into_iter()
            .filter_map(|(id, v)| serde_json::from_value::<Rule>(v).ok().map(|r| (id, r)))
            .collect();
        let channels = parse(self.store.alert_config(AlertConfig::Channels).await?, "channel")
            .into_iter()
            .filter_map(|(id, v)| serde_json::from_value::<Channel>(v).ok().map(|c| (id, c)))
            .collect();
        let silences = self
            .store
            .silences(now_ms())
            .await?
            .into_iter()
            .filter_map(|(id, until_ms, body)| {
                serde_json::from_str::<Silence>(&body).ok().map(|s| Silence { id, until_ms, ..s })
            })
            .collect();
        let config = Config { rules: Arc::new(rules), channels: Arc::new(channels), silences: Arc::new(silences) };
        *lock(&self.config) = (config.clone(), Some(Instant::now()));
        Ok(config)
    }

    fn audit(&self, u: &CurrentUser, action: &str, detail: &str) {
        if let Err(e) = self.enrolment.audit(action, "-", &u.actor, detail) {
            tracing::error!(action, error = %e, "alerts: the audit record could not be written");
        }
    }

    // -- what the pages and the API read -------------------------------------------

    /// What `u` sees of the alerts: everything with a grant on the fleet;
    /// otherwise the incidents (and their notifications), silences and rules
    /// of their hosts and apps, and no channel.
    pub async fn overview_for(&self, u: &CurrentUser) -> Result<Overview, ConsoleError> {
        let mut o = self.overview().await?;
        if u.access.whole() {
            return Ok(o);
        }
        o.firing.retain(|i| sees_incident(u, i));
        o.recent.retain(|i| sees_incident(u, i));
        let kept: std::collections::HashSet<i64> = o.firing.iter().chain(&o.recent).map(|i| i.row.id).collect();
        o.notifications.retain(|n| kept.contains(&n.incident));
        o.silences.retain(|s| u.access.touches(&s.silence.scope));
        o.rules.retain(|r| {
            r.rule
                .get("scope")
                .and_then(|v| v.as_str())
                .and_then(|s| Scope::parse(s).ok())
                .is_some_and(|s| u.access.touches(&s))
        });
        o.channels.clear();
        Ok(o)
    }

    pub async fn overview(&self) -> Result<Overview, ConsoleError> {
        let cfg = self.config(false).await.map_err(store_err)?;
        let firing = self.store.firing_incidents().await.map_err(store_err)?;
        let recent = self.store.recent_incidents(100).await.map_err(store_err)?;
        let notifications = self.store.recent_notifications(100).await.map_err(store_err)?;
        Ok(Overview {
            leading: self.leading.load(Ordering::Relaxed),
            firing: firing.into_iter().map(Into::into).collect(),
            recent: recent.into_iter().filter(|r| r.state != "firing").map(Into::into).collect(),
            notifications,
            silences: cfg
                .silences
                .iter()
                .map(|s| SilenceView { id: s.id, until_ms: s.until_ms, silence: s.clone() })
                .collect(),
            rules: cfg.rules.iter().map(|(id, r)| RuleView { id: *id, rule: r.fields() }).collect(),
            channels: cfg
                .channels
                .iter()
                .map(|(id, c)| ChannelSummary {
                    id: *id,
                    name: c.name.clone(),
                    kind: c.kind().to_owned(),
                    destination: c.destination(),
                    enabled: c.enabled,
                })
                .collect(),
        })
    }

    /// Channels as an admin edits them: every field, secrets masked.
    pub async fn channels(&self, u: &CurrentUser) -> Result<Vec<(i64, Value)>, ConsoleError> {
        need(u, Role::Admin)?;
        let cfg = self.config(true).await.map_err(store_err)?;
        Ok(cfg.channels.iter().map(|(id, c)| (*id, c.shown())).collect())
    }

    // -- changes (each audited) -------------------------------------------------------

    /// Adds (`id` none) or replaces a rule; its id.
    pub async fn save_rule(&self, u: &CurrentUser, id: Option<i64>, v: &Value) -> Result<i64, ConsoleError> {
        need(u, Role::Admin)?;
        let rule = Rule::parse(v)?;
        let cfg = self.config(true).await.map_err(store_err)?;
        if let Some(missing) = rule.channels.iter().find(|c| cfg.channel(**c).is_none()) {
            return Err(input::bad("channels", format!("there is no channel {missing}")));
        }
        let body = serde_json::to_string(&rule).map_err(|e| ConsoleError::internal(e.to_string()))?;
        let id = match id {
            Some(id) => {
                if !self.store.set_alert_config(AlertConfig::Rules, id, &body).await.map_err(store_err)? {
                    return Err(ConsoleError::NotFound { what: format!("rule {id}") });
                }
                self.audit(u, "alert.rule.changed", &format!("rule {id} ({}): {}", rule.name, rule.condition.kind()));
                id
            }
            None => {
                if cfg.rules.len() >= rules::RULES_MAX {
                    return Err(ConsoleError::Busy { what: format!("rules (at most {})", rules::RULES_MAX) });
                }
                let id = self.store.add_alert_config(AlertConfig::Rules, &body).await.map_err(store_err)?;
                self.audit(u, "alert.rule.added", &format!("rule {id} ({}): {}", rule.name, rule.condition.kind()));
                id
            }
        };
        self.config(true).await.map_err(store_err)?;
        Ok(id)
    }

    pub async fn remove_rule(&self, u: &CurrentUser, id: i64) -> Result<(), ConsoleError> {
        need(u, Role::Admin)?;
        if !self.store.remove_alert_config(AlertConfig::Rules, id).await.map_err(store_err)? {
            return Err(ConsoleError::NotFound { what: format!("rule {id}") });
        }
        self.audit(u, "alert.rule.removed", &format!("rule {id}"));
        self.config(true).await.map_err(store_err)?;
        Ok(())
    }

    pub async fn save_channel(&self, u: &CurrentUser, id: Option<i64>, v: &Value) -> Result<i64, ConsoleError> {
        need(u, Role::Admin)?;
        let cfg = self.config(true).await.map_err(store_err)?;
        let before = match id {
            Some(id) => Some(cfg.channel(id).ok_or_else(|| ConsoleError::NotFound { what: format!("channel {id}") })?),
            None => None,
        };
        let channel = Channel::parse(v, before)?;
        let body = serde_json::to_string(&channel).map_err(|e| ConsoleError::internal(e.to_string()))?;
        let id = match id {
            Some(id) => {
                if !self.store.set_alert_config(AlertConfig::Channels, id, &body).await.map_err(store_err)? {
                    return Err(ConsoleError::NotFound { what: format!("channel {id}") });
                }
                self.audit(u, "alert.channel.changed", &format!("channel {id} ({}, {})", channel.name, channel.kind()));
                id
            }
            None => {
                if cfg.channels.len() >= channels::CHANNELS_MAX {
                    return Err(ConsoleError::Busy { what: format!("channels (at most {})", channels::CHANNELS_MAX) });
                }
                let id = self.store.add_alert_config(AlertConfig::Channels, &body).await.map_err(store_err)?;
                self.audit(u, "alert.channel.added", &format!("channel {id} ({}, {})", channel.name, channel.kind()));
                id
            }
        };
        self.config(true).await.map_err(store_err)?;
        Ok(id)
    }

    pub async fn remove_channel(&self, u: &CurrentUser, id: i64) -> Result<(), ConsoleError> {
        need(u, Role::Admin)?;
        // A rule that names only channels that are gone would tell nobody.
        let cfg = self.config(true).await.map_err(store_err)?;
        let naming: Vec<String> = cfg
            .rules
            .iter()
            .filter(|(_, r)| r.channels.contains(&id))
            .map(|(rid, r)| format!("{} (#{rid})", r.name))
            .collect();
        if !naming.is_empty() {
            return Err(input::bad(
                "channel",
                format!("rules name it: {}; take it out of them first", naming.join(", ")),
            ));
        }
        if !self.store.remove_alert_config(AlertConfig::Channels, id).await.map_err(store_err)? {
            return Err(ConsoleError::NotFound { what: format!("channel {id}") });
        }
        self.audit(u, "alert.channel.removed", &format!("channel {id}"));
        self.config(true).await.map_err(store_err)?;
        Ok(())
    }

    /// Sends a test notification through a channel now: what happened.
    pub async fn test_channel(&self, u: &CurrentUser, id: i64) -> Result<String, ConsoleError> {
        need(u, Role::Admin)?;
        let cfg = self.config(true).await.map_err(store_err)?;
        let c = cfg.channel(id).ok_or_else(|| ConsoleError::NotFound { what: format!("channel {id}") })?;
        let mut n = Notice::sample("test");
        n.link = self.link();
        let result = self.sender.send(c, &n).await;
        self.audit(
            u,
            "alert.channel.tested",
            &format!("channel {id} ({}): {}", c.name, result.as_ref().map_or_else(|e| e.as_str(), |_| "sent")),
        );
        match result {
            Ok(()) => Ok(format!("A test notification was sent to {}.", c.name)),
            Err(e) => Err(ConsoleError::HostUnreachable { host: c.destination(), reason: e }),
        }
    }

    pub async fn add_silence(&self, u: &CurrentUser, v: &Value) -> Result<i64, ConsoleError> {
        if u.top() < Some(Role::Operator) {
            need(u, Role::Operator)?;
        }
        let i = input::Input::of(v)?;
        i.only(&["scope", "rule", "minutes", "reason"])?;
        let scope = match i.text("scope", 400)? {
            Some(s) => Scope::parse(&s).map_err(|e| input::bad("scope", e))?,
            None => Scope::Fleet,
        };
        if matches!(scope, Scope::Label { .. }) {
            return Err(input::bad("scope", "a silence covers the fleet, a host or an app"));
        }
        // An operator silences what they operate.
        u.access.need(Role::Operator, &scope)?;
        let minutes = i.number("minutes", 1, SILENCE_MAX_S / 60, 60)?;
        let rule = match i.number("rule", 0, i64::MAX as u64, 0)? {
            0 => None,
            r => Some(r as i64),
        };
        let cfg = self.config(true).await.map_err(store_err)?;
        if let Some(r) = rule {
            if !cfg.rules.iter().any(|(id, _)| *id == r) {
                return Err(input::bad("rule", format!("there is no rule {r}")));
            }
        }
        if cfg.silences.len() >= SILENCES_MAX {
            return Err(ConsoleError::Busy { what: format!("silences (at most {SILENCES_MAX})") });
        }
        let now = now_ms();
        let until = now + minutes as i64 * 60_000;
        let s = Silence {
            id: 0,
            until_ms: until,
            scope,
            rule,
            reason: i.text("reason", 200)?.unwrap_or_default(),
            by: u.actor.clone(),
            created_ms: now,
        };
        let body = serde_json::to_string(&s).map_err(|e| ConsoleError::internal(e.to_string()))?;
        let id = self.store.add_silence(until, &body).await.map_err(store_err)?;
        self.audit(u, "alert.silence.added", &format!("silence {id}: {} for {minutes} min; {}", s.scope, s.reason));
        self.config(true).await.map_err(store_err)?;
        Ok(id)
    }

    pub async fn end_silence(&self, u: &CurrentUser, id: i64) -> Result<(), ConsoleError> {
        let cfg = self.config(true).await.map_err(store_err)?;
        let scope = cfg.silences.iter().find(|s| s.id == id).map(|s| s.scope.clone());
        let Some(scope) = scope.filter(|s| u.access.touches(s)) else {
            return Err(ConsoleError::NotFound { what: format!("live silence {id}") });
        };
        u.access.need(Role::Operator, &scope)?;
        if !self.store.end_silence(id, now_ms()).await.map_err(store_err)? {
            return Err(ConsoleError::NotFound { what: format!("live silence {id}") });
        }
        self.audit(u, "alert.silence.ended", &format!("silence {id}"));
        self.config(true).await.map_err(store_err)?;
        Ok(())
    }

    pub async fn ack(&self, u: &CurrentUser, id: i64) -> Result<(), ConsoleError> {
        if !u.access.allows(Role::Operator, &Scope::Fleet) {
            // An operator acknowledges the incidents of their hosts and apps.
            let firing = self.store.firing_incidents().await.map_err(store_err)?;
            let theirs = firing.into_iter().map(IncidentView::from).find(|i| i.row.id == id);
            let Some(f) = theirs.filter(|i| sees_incident(u, i)).and_then(|i| i.finding) else {
                return Err(ConsoleError::NotFound { what: format!("unacknowledged firing incident {id}") });
            };
            let on = match &f.app {
                Some(app) => Scope::App { host: Some(f.host.clone()), project: app.clone() },
                None => Scope::Host(f.host.clone()),
            };
            u.access.need(Role::Operator, &on)?;
        }
        if !self.store.ack_incident(id, &u.actor, now_ms()).await.map_err(store_err)? {
            return Err(ConsoleError::NotFound { what: format!("unacknowledged firing incident {id}") });
        }
        self.audit(u, "alert.acknowledged", &format!("incident {id}"));
        Ok(())
    }

    pub async fn retry(&self, u: &CurrentUser, id: i64) -> Result<(), ConsoleError> {
        need(u, Role::Operator)?;
        if !self.store.retry_notification(id, now_ms()).await.map_err(store_err)? {
            return Err(ConsoleError::NotFound {
                what: format!("failed notification {id} that is the latest of its incident for its channel"),
            });
        }
        self.audit(u, "alert.notification.retried", &format!("notification {id}"));
        self.queued.notify_one();
        Ok(())
    }

    fn link(&self) -> Option<String> {
        self.settings.public_url.as_ref().map(|u| format!("{}/alerts", u.trim_end_matches('/')))
    }

    // -- the leader's work -------------------------------------------------------------

    /// Starts the loops: the evaluator (which also keeps the header's count),
    /// the sender, and the watchers that feed [`Known`].
    pub fn start(self: &Arc<Self>, core: Arc<Core>) {
        let me = self.clone();
        let c = core.clone();
        tokio::spawn(async move { me.evaluate_loop(c).await });
        let me = self.clone();
        tokio::spawn(async move { me.deliver_loop().await });
        let me = self.clone();
        tokio::spawn(async move { watch::watch(me, core).await });
    }

    async fn evaluate_loop(self: Arc<Self>, core: Arc<Core>) {
        let mut leader = leader::Leader::new(self.store.clone());
        let mut engine: Option<Engine> = None;
        let mut open: Option<HashMap<String, Open>> = None;
        let mut pruned = Instant::now();
        loop {
            tokio::time::sleep(TICK).await;
            let leading = leader.lead().await;
            if leading != self.leading.swap(leading, Ordering::Relaxed) {
                tracing::info!(
                    leading,
                    "alerts: this console {} the evaluator",
                    if leading { "is now" } else { "is no longer" }
                );
            }
            if !leading {
                (engine, open) = (None, None);
            } else if let Err(e) = self.round(&core, &mut engine, &mut open).await {
                // What is open is read from the store again; what the engine
                // remembers (how long conditions have held) is kept.
                tracing::warn!(error = %e, "alerts: a round failed");
                open = None;
            }
            if leading && pruned.elapsed() > Duration::from_secs(3600) {
                pruned = Instant::now();
                if let Err(e) = self.store.prune_alerts(now_ms() - KEEP_MS).await {
                    tracing::warn!(error = %e, "alerts: pruning failed");
                }
            }
            match self.store.firing_count().await {
                Ok(n) => {
                    self.firing.store(n, Ordering::Relaxed);
                    self.metrics.alerts_firing(n);
                    core.fleet.get().set_alerts(n);
                }
                Err(e) => tracing::debug!(error = %e, "alerts: no count"),
            }
        }
    }

    /// One evaluation and its consequences.
    async fn round(
        &self,
        core: &Core,
        engine: &mut Option<Engine>,
        open: &mut Option<HashMap<String, Open>>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let engine = engine.get_or_insert_with(|| Engine::new(now));
        if open.is_none() {
            // Starting, taking over, or after a failed write: what is open is what the store says.
            let mut loaded = HashMap::new();
            for r in self.store.firing_incidents().await? {
                match serde_json::from_str::<Finding>(&r.body) {
                    Ok(finding) => {
                        loaded.insert(
                            r.key,
                            Open { id: r.id, notified: r.notified, flaps: r.flaps, clear_since: None, finding },
                        );
                    }
                    // Unreadable (a newer version wrote it?): ended, not left firing for ever.
                    Err(_) => self
                        .store
                        .incident_step(IncidentStep::Resolve { id: r.id }, "resolved", &[], now)
                        .await
                        .map(|_| ())?,
                }
            }
            *open = Some(loaded);
        }
        let cfg = self.config(false).await?;
        let Some(open) = open.as_mut() else { return Ok(()) };
        let keys: HashSet<String> = open.keys().cloned().collect();
        let started = Instant::now();
        let outcome = {
            let known = lock(&self.known);
            core.fleet.get().with_fleet(|f| engine.evaluate(f, &cfg.rules, &known, &keys, now))
        };
        self.metrics.alert_evaluated(started.elapsed().as_secs_f64());
        self.reconcile(open, outcome, &cfg, now).await
    }

    async fn reconcile(
        &self,
        open: &mut HashMap<String, Open>,
        o: engine::Outcome,
        cfg: &Config,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut seen = HashSet::new();
        for f in o.firing {
            let k = f.key();
            seen.insert(k.clone());
            let silenced = cfg.silenced(&f, now);
            if let Some(inc) = open.get_mut(&k) {
                if inc.clear_since.take().is_some() {
                    self.store.incident_step(IncidentStep::Flapped { id: inc.id }, "", &[], now).await?;
                    inc.flaps += 1;
                }
                if !inc.notified && !silenced {
                    // Held back by a silence that has ended.
                    let to = self.deliveries(&f, cfg, now);
                    self.store.incident_step(IncidentStep::Notified { id: inc.id }, "firing", &to, now).await?;
                    inc.notified = true;
                }
                continue;
            }
            let body = serde_json::to_string(&f).unwrap_or_default();
            let to = if silenced { Vec::new() } else { self.deliveries(&f, cfg, now) };
            let inc = match self.store.resolved_since(&k, now - FLAP_WINDOW_MS).await? {
                Some(prev) => {
                    // Fired again soon after it resolved: the same incident. Its
                    // first flap is said as such; after a flapping incident's
                    // quiet resolution it is a firing again.
                    let event = if prev.notified && prev.flaps == 0 { "flapping" } else { "firing" };
                    let step = IncidentStep::Reopen { id: prev.id, notified: !silenced, body: &body };
                    self.store.incident_step(step, event, &to, now).await?;
                    Open { id: prev.id, notified: !silenced, flaps: prev.flaps + 1, clear_since: None, finding: f }
                }
                None => {
                    let step = IncidentStep::Open { key: &k, started_ms: now, notified: !silenced, body: &body };
                    let id = self.store.incident_step(step, "firing", &to, now).await?;
                    Open { id, notified: !silenced, flaps: 0, clear_since: None, finding: f }
                }
            };
            open.insert(k, inc);
        }
        let live: HashSet<i64> = cfg.rules.iter().filter(|(_, r)| r.enabled).map(|(id, _)| *id).collect();
        let mut over = Vec::new();
        for (k, inc) in open.iter_mut() {
            if seen.contains(k) || o.held.contains(k) {
                continue;
            }
            let gone = !live.contains(&inc.finding.rule);
            if inc.flaps > 0 && !gone {
                let since = *inc.clear_since.get_or_insert(now);
                if now - since < FLAP_WINDOW_MS {
                    continue;
                }
            }
            over.push(k.clone());
        }
        for k in over {
            let Some(inc) = open.remove(&k) else { continue };
            // What was announced is closed, whatever silences say: a silence
            // holds back firings, never the end of one already sent.
            let to = if inc.notified { self.deliveries(&inc.finding, cfg, now) } else { Vec::new() };
            self.store.incident_step(IncidentStep::Resolve { id: inc.id }, "resolved", &to, now).await?;
        }
        Ok(())
    }

    /// The channels a notification about `f` goes to — its rule's, or every
    /// enabled one when the rule names none — each due now or at the end of
    /// its quiet hours. Wakes the sender.
    fn deliveries(&self, f: &Finding, cfg: &Config, now: i64) -> Vec<(i64, i64)> {
        let named = cfg.rules.iter().find(|(id, _)| *id == f.rule).map(|(_, r)| r.channels.clone()).unwrap_or_default();
        let to: Vec<(i64, i64)> = cfg
            .channels
            .iter()
            .filter(|(id, c)| c.enabled && (named.is_empty() || named.contains(id)))
            .map(|(id, c)| (*id, c.quiet.and_then(|q| q.until(now)).unwrap_or(now)))
            .collect();
        if to.is_empty() {
            tracing::warn!(rule = f.rule, title = %f.title, "alerts: no channel to tell");
        } else {
            self.queued.notify_one();
        }
        to
    }

    async fn deliver_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.queued.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if !self.leading.load(Ordering::Relaxed) {
                continue;
            }
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "alerts: sending failed");
            }
        }
    }

    /// Sends what is due, up to 16 at once.
    async fn deliver_due(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let due = self.store.due(now, 16).await?;
        if due.is_empty() {
            return Ok(());
        }
        let cfg = self.config(false).await?;
        let sends = due.into_iter().map(|row| {
            let cfg = &cfg;
            async move { self.deliver_one(row, cfg).await }
        });
        for r in futures_util::future::join_all(sends).await {
            r?;
        }
        Ok(())
    }

    async fn deliver_one(&self, row: OutboxRow, cfg: &Config) -> Result<(), StoreError> {
        let now = now_ms();
        let fail = |why: &'static str| self.store.delivered(row.id, "failed", row.attempts, now, now, Some(why));
        let Some(c) = cfg.channel(row.channel) else { return fail("the channel was removed").await };
        if !c.enabled {
            return fail("the channel is switched off").await;
        }
        if let Some(until) = c.quiet.and_then(|q| q.until(now)) {
            return self.store.delivered(row.id, "pending", row.attempts, until, now, None).await;
        }
        let Some(inc) = self.store.incident(row.incident).await? else { return fail("the incident is gone").await };
        let Ok(finding) = serde_json::from_str::<Finding>(&inc.body) else {
            return fail("the incident is unreadable").await;
        };
        let notice = Notice {
            id: row.id,
            event: row.event.clone(),
            incident: inc.id,
            finding,
            started_at: inc.started_ms / 1000,
            resolved_at: if row.event == "resolved" { inc.resolved_ms.map(|r| r / 1000) } else { None },
            link: self.link(),
            sent_at: now,
        };
        let attempts = row.attempts + 1;
        match self.sender.send(c, &notice).await {
            Ok(()) => {
                tracing::info!(id = row.id, channel = %c.name, event = %row.event, "alerts: sent");
                self.metrics.alert_sent("sent");
                self.store.delivered(row.id, "sent", attempts, now, now_ms(), None).await
            }
            Err(e) if attempts >= i64::from(self.settings.attempts.max(1)) => {
                tracing::warn!(id = row.id, channel = %c.name, error = %e, attempts, "alerts: given up");
                self.metrics.alert_sent("failed");
                self.store.delivered(row.id, "failed", attempts, now, now, Some(&e)).await
            }
            Err(e) => {
                let wait = 1000i64 << (attempts - 1).clamp(0, 8);
                tracing::info!(id = row.id, channel = %c.name, error = %e, attempts, "alerts: will try again");
                self.metrics.alert_sent("retry");
                self.store.delivered(row.id, "pending", attempts, now_ms() + wait.min(300_000), now, Some(&e)).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::Location;

    async fn alerts(dir: &std::path::Path) -> Arc<Alerts> {
        let store = Store::open(&Location::Sqlite(dir.join("dockward.db"))).await.expect("a store");
        let enrolment = crate::server::enrol::Enrolment::open(&dir.join("hosts")).expect("an enrolment directory");
        let leading: crate::server::history::Leading = Arc::new(std::sync::atomic::AtomicBool::new(true));
        Alerts::new(store, enrolment, Arc::default(), leading, Settings { attempts: 3, public_url: None }).await
    }

    fn config(silences: Vec<Silence>) -> Config {
        let rule = Rule {
            name: "exited".into(),
            enabled: true,
            condition: rules::Condition::Exited,
            scope: Scope::Fleet,
            channels: vec![],
        };
        let channel = Channel {
            name: "hook".into(),
            enabled: true,
            target: channels::Target::Slack { url: "https://hooks.example/x".into() },
            quiet: None,
        };
        Config {
            rules: Arc::new(vec![(1, rule)]),
            channels: Arc::new(vec![(1, channel)]),
            silences: Arc::new(silences),
        }
    }

    fn finding(subject: &str, app: Option<&str>) -> Finding {
        Finding {
            rule: 1,
            rule_name: "exited".into(),
            kind: "exited".into(),
            host: "h1".into(),
            subject: subject.into(),
            app: app.map(str::to_owned),
            title: format!("{subject} exited"),
            detail: "exit code 1".into(),
        }
    }

    fn outcome(firing: Vec<Finding>) -> engine::Outcome {
        engine::Outcome { firing, held: HashSet::new() }
    }

    async fn events(a: &Alerts) -> Vec<String> {
        let mut rows = a.store.recent_notifications(100).await.expect("the outbox");
        rows.reverse();
        rows.into_iter().map(|r| r.event).collect()
    }

    #[tokio::test]
    async fn one_notification_per_change_and_flapping_is_damped() {
        let dir = tempfile::tempdir().expect("a directory");
        let a = alerts(dir.path()).await;
        let cfg = config(vec![]);
        let mut open = HashMap::new();
        let min = 60_000;
        let at = |m: i64| 1_000_000 + m * min;
        // Fires, still fires (nothing new), resolves.
        a.reconcile(&mut open, outcome(vec![finding("web", None)]), &cfg, at(0)).await.expect("a round");
        a.reconcile(&mut open, outcome(vec![finding("web", None)]), &cfg, at(1)).await.expect("a round");
        a.reconcile(&mut open, outcome(vec![]), &cfg, at(2)).await.expect("a round");
        assert_eq!(events(&a).await, ["firing", "resolved"]);
        // Fires again within the flap window: said once, as flapping…
        a.reconcile(&mut open, outcome(vec![finding("web", None)]), &cfg, at(3)).await.expect("a round");
        assert_eq!(events(&a).await, ["firing", "resolved", "flapping"]);
        // …then its changes are held until it has been quiet for the window.
        for m in [4, 5, 6] {
            let f = if m % 2 == 0 { vec![] } else { vec![finding("web", None)] };
            a.reconcile(&mut open, outcome(f), &cfg, at(m)).await.expect("a round");
        }
        a.reconcile(&mut open, outcome(vec![]), &cfg, at(10)).await.expect("a round");
        assert_eq!(events(&a).await.len(), 3, "held while it may flap");
        a.reconcile(&mut open, outcome(vec![]), &cfg, at(17)).await.expect("a round");
        assert_eq!(events(&a).await, ["firing", "resolved", "flapping", "resolved"]);
        let inc = a.store.recent_incidents(10).await.expect("incidents");
        assert_eq!(inc.len(), 1, "one incident throughout: {inc:?}");
        assert_eq!(inc[0].flaps, 2);
        // Firing again after that announced resolution is said again.
        a.reconcile(&mut open, outcome(vec![finding("web", None)]), &cfg, at(20)).await.expect("a round");
        assert_eq!(events(&a).await, ["firing", "resolved", "flapping", "resolved", "firing"]);
    }

    #[tokio::test]
    async fn a_silence_holds_an_incident_back_and_its_end_lets_it_through() {
        let dir = tempfile::tempdir().expect("a directory");
        let a = alerts(dir.path()).await;
        let silence = Silence {
            id: 1,
            until_ms: 5_000,
            scope: Scope::App { host: None, project: "shop".into() },
            rule: None,
            reason: "maintenance".into(),
            by: "op".into(),
            created_ms: 0,
        };
        let silenced = config(vec![silence]);
        let mut open = HashMap::new();
        let f = || outcome(vec![finding("web", Some("shop")), finding("other", Some("blog"))]);
        a.reconcile(&mut open, f(), &silenced, 1_000).await.expect("a round");
        assert_eq!(events(&a).await, ["firing"], "only the one outside the silence");
        a.reconcile(&mut open, f(), &silenced, 6_000).await.expect("a round");
        assert_eq!(events(&a).await, ["firing", "firing"], "the silence is over");
        a.reconcile(&mut open, f(), &silenced, 7_000).await.expect("a round");
        assert_eq!(events(&a).await.len(), 2, "once");
        // A silence holds back firings, never the end of one already sent.
        let again = config(vec![Silence { until_ms: 60_000, ..silenced.silences[0].clone() }]);
        a.reconcile(&mut open, outcome(vec![]), &again, 8_000).await.expect("a round");
        assert_eq!(events(&a).await, ["firing", "firing", "resolved", "resolved"]);
    }
}
