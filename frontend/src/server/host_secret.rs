//! A host's secret file, followed: re-read when it changes, so a rotation
//! needs no restart. The sidecar client and the tunnels of outbound hosts
//! both hold one.

use std::time::Duration;

/// A host's secret, read from its file and re-read when the file changes
/// (looked at no more than once a second), so a rotation needs no restart.
pub struct HostSecret {
    host: String,
    path: std::path::PathBuf,
    cached: std::sync::Mutex<(String, FileStamp, std::time::Instant)>,
}

type FileStamp = Option<(std::time::SystemTime, u64, u64)>;

fn file_stamp(path: &std::path::Path) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

fn read_secret(name: &str, path: &std::path::Path) -> Result<String, String> {
    let secret = std::fs::read_to_string(path)
        .map_err(|e| format!("host {name}: cannot read its secret from {}: {e}", path.display()))?;
    let secret = secret.trim_end_matches(['\n', '\r']).to_owned();
    if secret.len() < 32 {
        return Err(format!("host {name}: the secret in {} is shorter than 32 bytes", path.display()));
    }
    Ok(secret)
}

impl HostSecret {
    pub fn load(name: &str, path: std::path::PathBuf) -> Result<Self, String> {
        let stamp = file_stamp(&path);
        let secret = read_secret(name, &path)?;
        Ok(Self {
            host: name.to_owned(),
            path,
            cached: std::sync::Mutex::new((secret, stamp, std::time::Instant::now())),
        })
    }

    pub fn get(&self) -> String {
        let mut c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if c.2.elapsed() >= Duration::from_secs(1) {
            c.2 = std::time::Instant::now();
            let stamp = file_stamp(&self.path);
            if stamp != c.1 {
                c.1 = stamp;
                match read_secret(&self.host, &self.path) {
                    Ok(fresh) if fresh != c.0 => {
                        tracing::info!(path = %self.path.display(), "a host secret changed; using the new one");
                        c.0 = fresh;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "keeping the previous secret"),
                }
            }
        }
        c.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_secret_follows_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db1");
        std::fs::write(&path, "first-secret-0123456789abcdef0123456789\n").unwrap();
        let s = HostSecret::load("db1", path.clone()).unwrap();
        assert_eq!(s.get(), "first-secret-0123456789abcdef0123456789");
        // Replaced the way `secret rotate` does it: a new file renamed over the old one.
        std::fs::write(dir.path().join("db1.tmp"), "second-secret-0123456789abcdef0123456789").unwrap();
        std::fs::rename(dir.path().join("db1.tmp"), &path).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(s.get(), "second-secret-0123456789abcdef0123456789");
        // A broken replacement keeps the last good secret.
        std::fs::write(&path, "short").unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(s.get(), "second-secret-0123456789abcdef0123456789");
    }
}
