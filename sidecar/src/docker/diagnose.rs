//! Why the engine cannot be used, in words an operator can act on. Only the
//! sidecar can see the socket, so it names the cause and the fix, and every
//! 503 it answers carries them to the console's host panel.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use shared::{EngineProblem, EngineProblemKind};

use crate::privilege;

/// Diagnoses a failed ping of the engine at `host` (`unix:///…`, `tcp://…`,
/// `http://…`); `error` is what the client library said.
pub fn diagnose(host: &str, error: &str) -> EngineProblem {
    let mut p = match host.strip_prefix("unix://") {
        Some(path) => socket(Path::new(path), error),
        None => EngineProblem::new(
            EngineProblemKind::Unreachable,
            format!("the engine at {host} did not answer: {error}"),
            "check that DOCKER_HOST is right and that the engine listens there",
        ),
    };
    // Bounded: it travels in every 503 and in the log.
    truncate(&mut p.detail, DETAIL_MAX);
    p
}

/// Longest `detail` kept (a client library's error can be long).
const DETAIL_MAX: usize = 512;

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
}

fn socket(path: &Path, error: &str) -> EngineProblem {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return EngineProblem::new(
                EngineProblemKind::SocketMissing,
                format!("there is no Docker socket at {shown}"),
                format!(
                    "mount the host's socket into the sidecar ({shown}:{shown} in compose.yaml), or set DOCKER_HOST \
                     to where the engine listens; is Docker installed and started on this host?"
                ),
            )
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => return denied(path, None, error),
        Err(e) => {
            return EngineProblem::new(
                EngineProblemKind::Unreachable,
                format!("cannot look at {shown}: {e}"),
                "check the mount of the Docker socket into the sidecar",
            )
        }
    };
    if !meta.file_type().is_socket() {
        let what = if meta.is_dir() { "a directory" } else { "not a socket" };
        return EngineProblem::new(
            EngineProblemKind::SocketMissing,
            format!(
                "{shown} is {what}: the host had no Docker socket when the sidecar's container was created, so \
                 Docker made a directory in its place (on the host too)"
            ),
            "on the host, remove that directory, start the Docker engine (it makes the socket), then recreate \
             the sidecar (docker compose up -d --force-recreate sidecar); with rootless Docker, mount \
             $XDG_RUNTIME_DIR/docker.sock instead",
        );
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Err(e) if e.kind() == ErrorKind::PermissionDenied => denied(path, Some(&meta), error),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => EngineProblem::new(
            EngineProblemKind::EngineDown,
            format!("nothing answers on {shown}: the Docker engine is not running"),
            "start the engine on the host (systemctl start docker); the sidecar reconnects by itself",
        ),
        Err(e) => EngineProblem::new(
            EngineProblemKind::Unreachable,
            format!("cannot connect to {shown}: {e}"),
            "check the engine's log on the host (journalctl -u docker)",
        ),
        Ok(_) => EngineProblem::new(
            EngineProblemKind::EngineDown,
            format!("the engine accepts connections on {shown} but does not answer: {error}"),
            "the engine may be starting or stuck; check its log on the host (journalctl -u docker)",
        ),
    }
}

fn denied(path: &Path, meta: Option<&std::fs::Metadata>, error: &str) -> EngineProblem {
    let me = privilege::Identity::current();
    let shown = path.display();
    let Some(meta) = meta else {
        return EngineProblem::new(
            EngineProblemKind::PermissionDenied,
            format!("permission denied on {shown} ({error}); the sidecar runs as {me}"),
            "make the socket's directory searchable by the sidecar's user",
        );
    };
    let (uid, gid, mode) = (meta.uid(), meta.gid(), meta.permissions().mode() & 0o777);
    let detail = format!(
        "permission denied on {shown} (owner uid {uid}, group {gid}, mode {mode:04o}); the sidecar runs as {me}"
    );
    let fix = if mode & 0o060 != 0o060 && uid == 0 {
        format!(
            "the socket grants its group no read-write access (mode {mode:04o}): make it group-accessible on the \
             host (chmod 660 {shown}, with a group of its own: chgrp docker {shown})"
        )
    } else if mode & 0o060 != 0o060 {
        format!(
            "the socket grants its group no read-write access (mode {mode:04o}): run the sidecar as its owner \
             (compose: user: \"{uid}:{gid}\", without DOCKWARD_RUN_AS), or make the socket group-accessible"
        )
    } else if me.groups.contains(&gid) || me.gid == gid {
        format!(
            "the sidecar is in group {gid} and still refused: a security module is in the way (SELinux: \
             security_opt: [\"label=disable\"] for the sidecar, or a policy allowing container_runtime_t), \
             or the socket was replaced since the sidecar started (recreate it)"
        )
    } else if me.uid == 0 || me.started_as_root {
        format!(
            "the sidecar joins the socket's group itself when it starts as root; restart it \
             (docker compose up -d --force-recreate sidecar) so it joins group {gid}"
        )
    } else {
        format!(
            "start the sidecar as root (compose.yaml does: it joins group {gid} and drops to uid 65532 before \
             serving), or give it the group: group_add: [\"{gid}\"]"
        )
    };
    EngineProblem::new(EngineProblemKind::PermissionDenied, detail, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let p = diagnose(&format!("unix://{}/docker.sock", dir.path().display()), "x");
        assert_eq!(p.kind, EngineProblemKind::SocketMissing);
        assert!(p.detail.contains("no Docker socket at"), "{}", p.detail);
        assert!(p.fix.contains("mount"), "{}", p.fix);
    }

    #[test]
    fn a_directory_in_place_of_the_socket_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let p = diagnose(&format!("unix://{}", dir.path().display()), "x");
        assert_eq!(p.kind, EngineProblemKind::SocketMissing);
        assert!(p.detail.contains("is a directory"), "{}", p.detail);
        assert!(p.fix.contains("recreate"), "{}", p.fix);
    }

    #[test]
    fn a_socket_nobody_listens_on_is_an_engine_that_is_down() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let p = diagnose(&format!("unix://{}", path.display()), "x");
        assert_eq!(p.kind, EngineProblemKind::EngineDown);
        assert!(p.detail.contains("not running"), "{}", p.detail);
        assert!(p.fix.contains("systemctl start docker"), "{}", p.fix);
    }

    #[test]
    fn a_listening_socket_that_does_not_answer_is_down_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let p = diagnose(&format!("unix://{}", path.display()), "timed out");
        assert_eq!(p.kind, EngineProblemKind::EngineDown);
        assert!(p.detail.contains("does not answer: timed out"), "{}", p.detail);
    }

    #[test]
    fn a_long_client_error_is_cut() {
        let p = diagnose("tcp://10.0.0.5:2375", &"x".repeat(10_000));
        assert!(p.detail.len() <= DETAIL_MAX + '…'.len_utf8(), "{}", p.detail.len());
        assert!(p.detail.ends_with('…'));
    }

    #[test]
    fn tcp_hosts_name_the_address() {
        let p = diagnose("tcp://10.0.0.5:2375", "connection refused");
        assert_eq!(p.kind, EngineProblemKind::Unreachable);
        assert!(p.detail.contains("tcp://10.0.0.5:2375") && p.detail.contains("connection refused"));
    }
}
