//! One trial per scenario around one shared, expensive environment (a
//! browser with a sidecar and a console, a compose stack), for test targets
//! with `harness = false`.
//!
//! Scenarios run one at a time, in the order given, each as its own
//! libtest-compatible trial: a failure fails that trial only and the rest
//! still run. The environment starts when the first selected scenario runs
//! (so `--list`, or a filter that selects nothing, starts nothing) and is
//! torn down after the last one, whatever the outcomes. A scenario that
//! needs an earlier one's effects says so with [`Scenario::after`]: it fails
//! at once, naming them, when they did not pass in this run.

use std::collections::HashSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Failed, Trial};

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;
type Body<E> = Box<dyn Fn(Arc<E>) -> BoxFuture + Send + Sync>;

/// A named check against the shared environment `E`.
pub struct Scenario<E> {
    name: &'static str,
    after: Vec<&'static str>,
    body: Body<E>,
}

/// A scenario from an async function of the shared environment.
pub fn scenario<E, F, Fut>(name: &'static str, body: F) -> Scenario<E>
where
    F: Fn(Arc<E>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    Scenario { name, after: Vec::new(), body: Box::new(move |env| Box::pin(body(env))) }
}

impl<E> Scenario<E> {
    /// Runs only when these earlier scenarios passed in this run (it uses what they did).
    pub fn after(mut self, names: &[&'static str]) -> Self {
        self.after.extend_from_slice(names);
        self
    }
}

enum Slot<E> {
    NotStarted,
    Up(Arc<E>),
    Failed(String),
}

struct Shared<E> {
    rt: tokio::runtime::Runtime,
    env: Mutex<Slot<E>>,
    passed: Mutex<HashSet<&'static str>>,
}

/// Runs `scenarios` in order against one environment made by `start`, then
/// `teardown(env, all_passed)`. Returns the exit code for `main`.
pub fn run<E, S, SFut, T, TFut>(start: S, scenarios: Vec<Scenario<E>>, teardown: T) -> ExitCode
where
    E: Send + Sync + 'static,
    S: FnOnce() -> SFut + Send + 'static,
    SFut: Future<Output = E>,
    T: FnOnce(E, bool) -> TFut,
    TFut: Future<Output = ()>,
{
    let mut args = Arguments::from_args();
    // One environment, one browser or stack: never two scenarios at once.
    args.test_threads = Some(1);
    let names: HashSet<&str> = scenarios.iter().map(|s| s.name).collect();
    for s in &scenarios {
        for dep in &s.after {
            assert!(names.contains(dep), "{} runs after {dep:?}, which is not a scenario", s.name);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let shared = Arc::new(Shared { rt, env: Mutex::new(Slot::NotStarted), passed: Mutex::new(HashSet::new()) });
    let start = Arc::new(Mutex::new(Some(start)));
    let trials = scenarios
        .into_iter()
        .map(|s| {
            let shared = shared.clone();
            let start = start.clone();
            Trial::test(s.name, move || {
                let missing: Vec<&str> = {
                    let passed = shared.passed.lock().unwrap();
                    s.after.iter().copied().filter(|d| !passed.contains(d)).collect()
                };
                if !missing.is_empty() {
                    return Err(Failed::from(format!(
                        "needs {} to have passed first in this run (it uses their effects)",
                        missing.join(", ")
                    )));
                }
                let env = environment(&shared, &start)?;
                shared.rt.block_on((s.body)(env));
                shared.passed.lock().unwrap().insert(s.name);
                Ok(())
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    let Shared { rt, env, .. } = match Arc::try_unwrap(shared) {
        Ok(shared) => shared,
        Err(_) => unreachable!("every trial has run and been dropped"),
    };
    if let Slot::Up(env) = env.into_inner().unwrap_or_else(|e| e.into_inner()) {
        let env = Arc::try_unwrap(env).unwrap_or_else(|_| panic!("a scenario kept the environment"));
        rt.block_on(teardown(env, !conclusion.has_failed()));
    }
    drop(rt);
    conclusion.exit_code()
}

/// The shared environment, started by the first scenario that needs it.
fn environment<E, S, SFut>(shared: &Shared<E>, start: &Mutex<Option<S>>) -> Result<Arc<E>, Failed>
where
    S: FnOnce() -> SFut,
    SFut: Future<Output = E>,
{
    let mut slot = shared.env.lock().unwrap_or_else(|e| e.into_inner());
    if let Slot::NotStarted = *slot {
        let start = start.lock().unwrap().take().expect("started once");
        *slot = match std::panic::catch_unwind(AssertUnwindSafe(|| shared.rt.block_on(start()))) {
            Ok(env) => Slot::Up(Arc::new(env)),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(no message)".into());
                Slot::Failed(msg)
            }
        };
    }
    match &*slot {
        Slot::Up(env) => Ok(env.clone()),
        Slot::Failed(msg) => Err(Failed::from(format!("the shared environment did not start: {msg}"))),
        Slot::NotStarted => unreachable!(),
    }
}
