//! Dropping root at start: the one way the sidecar works on any host whatever
//! the gid of its Docker socket, with no setting to get right.
//!
//! Started as uid 0 (compose.yaml: `user: "0:0"`, every capability dropped
//! but SETUID and SETGID, `no-new-privileges`) with `DOCKWARD_RUN_AS` set, the
//! sidecar — before it reads any file, opens any port or starts a thread —
//! looks up the socket's group, sets its supplementary groups to exactly that
//! group, and becomes the unprivileged user. The kernel clears every
//! capability on that change of uid, and the process checks it cannot become
//! root again before it goes on.

use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once root was dropped (for the diagnosis of a later permission error).
static STARTED_AS_ROOT: AtomicBool = AtomicBool::new(false);

/// `DOCKWARD_RUN_AS`: `uid:gid`, both non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl std::str::FromStr for RunAs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (u, g) = s.split_once(':').ok_or_else(|| format!("{s:?} is not uid:gid (for example 65532:65532)"))?;
        let num =
            |v: &str, what: &str| v.trim().parse::<u32>().map_err(|_| format!("{what} {v:?} in {s:?} is not a number"));
        let (uid, gid) = (num(u, "uid")?, num(g, "gid")?);
        if uid == 0 || gid == 0 {
            return Err(format!("{s:?}: the sidecar does not run as root (uid or gid 0)"));
        }
        Ok(Self { uid, gid })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("{call} failed: {source} (the container needs the SETUID and SETGID capabilities to drop root)")]
    Syscall { call: &'static str, source: std::io::Error },
    #[error("after dropping to uid {uid}, the process is not that user or could become root again; refusing to go on")]
    NotDropped { uid: u32 },
}

/// Who this process is, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub started_as_root: bool,
}

impl Identity {
    pub fn current() -> Self {
        // SAFETY: plain getters with no arguments.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Self { uid, gid, groups: groups(), started_as_root: STARTED_AS_ROOT.load(Ordering::Relaxed) }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self.groups.iter().map(u32::to_string).collect();
        write!(f, "uid {} (gid {}, groups [{}])", self.uid, self.gid, groups.join(", "))
    }
}

fn groups() -> Vec<u32> {
    // SAFETY: a zero-length call only returns the count; the second fills at most `n` entries.
    unsafe {
        let n = libc::getgroups(0, std::ptr::null_mut());
        if n <= 0 {
            return Vec::new();
        }
        let mut v = vec![0 as libc::gid_t; n as usize];
        let got = libc::getgroups(n, v.as_mut_ptr());
        v.truncate(got.max(0) as usize);
        v
    }
}

/// What the drop did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub uid: u32,
    pub gid: u32,
    /// The socket's group, when there was a socket to join.
    pub socket_group: Option<u32>,
}

/// The group of the unix socket `docker_host` names, if it is one.
pub fn socket_group(docker_host: &str) -> Option<u32> {
    let path = Path::new(docker_host.strip_prefix("unix://")?);
    let meta = std::fs::metadata(path).ok()?;
    meta.file_type().is_socket().then(|| meta.gid())
}

/// Drops root, if this process is root: joins the group of the socket at
/// `docker_host` (only that one), then becomes `run_as`. Does nothing when not
/// root. Call before any thread is started.
pub fn drop_root(run_as: RunAs, docker_host: &str) -> Result<Option<Dropped>, PrivilegeError> {
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let socket_group = socket_group(docker_host);
    if socket_group == Some(0) {
        tracing::warn!(
            "the Docker socket belongs to group 0 (root's group): the sidecar joins it, as it must to open the \
             socket; give the socket a group of its own (chgrp docker) to avoid that"
        );
    }
    let mut groups = vec![run_as.gid as libc::gid_t];
    groups.extend(socket_group.filter(|g| *g != run_as.gid));
    let check = |call: &'static str, rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(PrivilegeError::Syscall { call, source: std::io::Error::last_os_error() })
        }
    };
    // SAFETY: `groups` outlives the call and its length is passed with it;
    // setgid/setuid take plain ids. Order matters: groups and gid while still root.
    unsafe {
        check("setgroups", libc::setgroups(groups.len() as _, groups.as_ptr()))?;
        check("setgid", libc::setgid(run_as.gid))?;
        check("setuid", libc::setuid(run_as.uid))?;
    }
    // SAFETY: getters; the setuid(0) attempt must fail now that the saved uid is gone too.
    let still_root = unsafe {
        libc::getuid() != run_as.uid
            || libc::geteuid() != run_as.uid
            || libc::getgid() != run_as.gid
            || libc::getegid() != run_as.gid
            || libc::setuid(0) == 0
            || libc::setgid(0) == 0
    };
    if still_root {
        return Err(PrivilegeError::NotDropped { uid: run_as.uid });
    }
    STARTED_AS_ROOT.store(true, Ordering::Relaxed);
    Ok(Some(Dropped { uid: run_as.uid, gid: run_as.gid, socket_group }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_as_parses_and_refuses_root() {
        assert_eq!("65532:65532".parse::<RunAs>(), Ok(RunAs { uid: 65532, gid: 65532 }));
        assert_eq!("1000:100".parse::<RunAs>(), Ok(RunAs { uid: 1000, gid: 100 }));
        assert!("0:0".parse::<RunAs>().unwrap_err().contains("root"));
        assert!("1000:0".parse::<RunAs>().unwrap_err().contains("root"));
        assert!("65532".parse::<RunAs>().unwrap_err().contains("uid:gid"));
        assert!("a:1".parse::<RunAs>().unwrap_err().contains("not a number"));
    }

    #[test]
    fn the_socket_group_is_read_only_from_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let gid = std::fs::metadata(&path).unwrap().gid();
        assert_eq!(socket_group(&format!("unix://{}", path.display())), Some(gid));
        assert_eq!(socket_group(&format!("unix://{}", dir.path().display())), None, "a directory is no socket");
        assert_eq!(socket_group("tcp://127.0.0.1:2375"), None);
    }

    #[test]
    fn identity_names_uid_and_groups() {
        let me = Identity::current();
        let text = me.to_string();
        assert!(text.starts_with(&format!("uid {} (gid {}", me.uid, me.gid)), "{text}");
    }
}
