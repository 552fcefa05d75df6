//! The recreates in flight: the containers they hold (restart and prune
//! leave those alone; a second recreate gets 409) and their journals
//! ([`journal`]). Shared state, like the caches: the `recreate` verb
//! (`verbs/recreate/`) acts, this only remembers.

pub mod journal;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use self::journal::Journal;
use crate::error::ApiError;

/// Recreates in flight (and those a restart left to recover), by the old
/// container's id and its name: after the swap the name is the new
/// container's, and it is still busy.
pub struct Recreates {
    busy: Arc<Mutex<HashSet<String>>>,
    max: usize,
    /// The journals' directory (beside the audit log).
    pub journal_dir: PathBuf,
    /// Test hook (`DOCKWARD_TEST_RECREATE_PAUSE`): a pause after the old container stops.
    pub pause_after_stop: Option<Duration>,
    /// `DOCKWARD_BUILD_ROOT`: where compose projects may be rebuilt from source.
    pub build_root: Option<PathBuf>,
    /// `DOCKWARD_BUILD_CONTEXT_MAX`.
    pub build_context_max: u64,
}

/// The claim on a container for one recreate (its id and name); released on drop.
pub struct Busy {
    set: Arc<Mutex<HashSet<String>>>,
    keys: [String; 2],
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut busy = self.set.lock().unwrap_or_else(|e| e.into_inner());
        for k in &self.keys {
            busy.remove(k);
        }
    }
}

/// The label on a container a recreate made, naming the container it replaces:
/// a rollback removes a container by its temporary name only if it carries it.
pub const MADE_FOR_LABEL: &str = "dockward.recreate.of";

/// Whether `name` is a recreate's temporary or aside name.
pub fn is_reserved_name(name: &str) -> bool {
    name.ends_with("-dockward-new") || name.ends_with("-dockward-old")
}

impl Recreates {
    pub fn new(
        journal_dir: PathBuf,
        max: u32,
        pause_after_stop: Option<Duration>,
        build_root: Option<PathBuf>,
        build_context_max: u64,
    ) -> Self {
        Self {
            busy: Arc::default(),
            max: max.max(1) as usize,
            journal_dir,
            pause_after_stop,
            build_root,
            build_context_max,
        }
    }

    /// Whether a recreate holds (or awaits the recovery of) this container.
    pub fn is_busy(&self, id: &str, name: &str) -> bool {
        let busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.contains(id) || busy.contains(name) || is_reserved_name(name)
    }

    /// Holds `id` and `name` for one recreate: 409 when a recreate holds
    /// (or a journal awaits the recovery of) either, 429 when too many run.
    pub fn claim(&self, id: &str, name: &str) -> Result<Busy, ApiError> {
        if is_reserved_name(name) {
            return Err(ApiError::Conflict(format!("{name} is a recreate's temporary container")));
        }
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        if busy.contains(id) || busy.contains(name) {
            return Err(ApiError::Conflict(format!("{name} is already being recreated")));
        }
        if journal::exists(&self.journal_dir, id) {
            return Err(ApiError::Conflict(format!("a recreate of {name} awaits its recovery")));
        }
        if busy.len() >= 2 * self.max {
            return Err(ApiError::RateLimited { retry_after_secs: 5 });
        }
        busy.insert(id.to_owned());
        busy.insert(name.to_owned());
        Ok(Busy { set: self.busy.clone(), keys: [id.to_owned(), name.to_owned()] })
    }

    /// Holds the containers of journals left by a previous run until
    /// [`recover`] has dealt with them (called before serving).
    pub fn hold_for_recovery(&self) -> Vec<Journal> {
        let left = journal::left_over(&self.journal_dir);
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        for j in &left {
            busy.insert(j.old_id.clone());
            busy.insert(j.name.clone());
        }
        left
    }

    pub fn release(&self, j: &Journal) {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.remove(&j.old_id);
        busy.remove(&j.name);
    }
}
