//! The kernel's counter files, parsed. Pure: every function takes the file's
//! text and returns a value or a [`ParseError`] naming what was wrong. Files
//! are read whole but bounded ([`super::MAX_FILE`]); hostile contents
//! (garbage, overflowing numbers, missing lines) are errors, never panics.

/// What was wrong with one file's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{file}: not a number: {text:?}")]
    NotANumber { file: &'static str, text: String },
    #[error("{file}: no {key:?} line")]
    Missing { file: &'static str, key: &'static str },
    #[error("{file}: malformed line {line:?}")]
    Malformed { file: &'static str, line: String },
}

/// At most this much of a bad value is quoted in an error.
const QUOTE: usize = 40;

fn quote(s: &str) -> String {
    s.chars().take(QUOTE).collect()
}

/// A file holding one unsigned number (`cpuacct.usage`, `memory.current`, `pids.current`).
pub fn single(file: &'static str, text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    t.parse::<u64>().map_err(|_| ParseError::NotANumber { file, text: quote(t) })
}

/// A limit: a number, or `max` (cgroup v2) for none.
pub fn limit(file: &'static str, text: &str) -> Result<Option<u64>, ParseError> {
    match text.trim() {
        "max" => Ok(None),
        _ => single(file, text).map(Some),
    }
}

/// `key value` lines (`memory.stat`, `cpu.stat`): the value of `key`.
pub fn keyed(file: &'static str, text: &str, key: &'static str) -> Result<u64, ParseError> {
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        if parts.next() == Some(key) {
            let v = parts.next().ok_or_else(|| ParseError::Malformed { file, line: quote(line) })?;
            return v.parse::<u64>().map_err(|_| ParseError::NotANumber { file, text: quote(v) });
        }
    }
    Err(ParseError::Missing { file, key })
}

/// cgroup v1 `blkio.throttle.io_service_bytes_recursive`: `MAJ:MIN Op bytes`
/// lines and a `Total` line; the sum of `Read` and of `Write` bytes.
pub fn blkio_v1(file: &'static str, text: &str) -> Result<(u64, u64), ParseError> {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines() {
        let parts: Vec<&str> = line.split_ascii_whitespace().collect();
        match parts.as_slice() {
            [] | ["Total", _] => {}
            [_dev, op, v] => {
                let v = v.parse::<u64>().map_err(|_| ParseError::NotANumber { file, text: quote(v) })?;
                if op.eq_ignore_ascii_case("read") {
                    read = read.saturating_add(v);
                } else if op.eq_ignore_ascii_case("write") {
                    write = write.saturating_add(v);
                }
            }
            _ => return Err(ParseError::Malformed { file, line: quote(line) }),
        }
    }
    Ok((read, write))
}

/// cgroup v2 `io.stat`: `MAJ:MIN rbytes=.. wbytes=.. rios=..` lines; the sums
/// of `rbytes` and `wbytes`.
pub fn io_stat_v2(file: &'static str, text: &str) -> Result<(u64, u64), ParseError> {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        if parts.next().is_none() {
            continue;
        }
        for kv in parts {
            let (k, v) = kv.split_once('=').ok_or_else(|| ParseError::Malformed { file, line: quote(line) })?;
            let slot = match k {
                "rbytes" => &mut read,
                "wbytes" => &mut write,
                _ => continue,
            };
            let v = v.parse::<u64>().map_err(|_| ParseError::NotANumber { file, text: quote(v) })?;
            *slot = slot.saturating_add(v);
        }
    }
    Ok((read, write))
}

/// cgroup v2 `cpu.max` (`$QUOTA $PERIOD`, quota `max` for none): the quota in
/// CPUs, `None` when unlimited.
pub fn cpu_max_v2(file: &'static str, text: &str) -> Result<Option<f64>, ParseError> {
    let mut parts = text.split_ascii_whitespace();
    let (Some(quota), Some(period), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ParseError::Malformed { file, line: quote(text.trim()) });
    };
    if quota == "max" {
        return Ok(None);
    }
    let q = single(file, quota)?;
    let p = single(file, period)?;
    Ok(quota_cpus(q as i64, p))
}

/// A CFS quota and period in microseconds as CPUs (v1's `cpu.cfs_quota_us` is
/// -1 for none).
pub fn quota_cpus(quota_us: i64, period_us: u64) -> Option<f64> {
    (quota_us > 0 && period_us > 0).then(|| quota_us as f64 / period_us as f64)
}

/// v1 `cpu.cfs_quota_us`: a signed number (-1 for none).
pub fn signed(file: &'static str, text: &str) -> Result<i64, ParseError> {
    let t = text.trim();
    t.parse::<i64>().map_err(|_| ParseError::NotANumber { file, text: quote(t) })
}

/// `/proc/<pid>/net/dev`: received and transmitted bytes over every
/// interface but loopback (as the engine counts a container's networks).
pub fn net_dev(file: &'static str, text: &str) -> Result<(u64, u64), ParseError> {
    let (mut rx, mut tx) = (0u64, 0u64);
    // Two header lines, then `  name: rx_bytes packets … (8 fields) tx_bytes …`.
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            return Err(ParseError::Malformed { file, line: quote(line) });
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<&str> = counters.split_ascii_whitespace().collect();
        if fields.len() < 16 {
            return Err(ParseError::Malformed { file, line: quote(line) });
        }
        let num = |s: &str| s.parse::<u64>().map_err(|_| ParseError::NotANumber { file, text: quote(s) });
        rx = rx.saturating_add(num(fields[0])?);
        tx = tx.saturating_add(num(fields[8])?);
    }
    Ok((rx, tx))
}

/// `/proc/<pid>/cgroup`: the process's cgroup path on the unified hierarchy
/// (`0::/path`) and per v1 controller (`N:cpu,cpuacct:/path`).
pub fn proc_cgroup(text: &str) -> Vec<(Vec<&str>, &str)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((controllers.split(',').filter(|c| !c.is_empty()).collect(), path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_limits() {
        assert_eq!(single("f", "1088715368\n"), Ok(1_088_715_368));
        assert_eq!(limit("f", "max\n"), Ok(None));
        assert_eq!(limit("f", "67108864\n"), Ok(Some(67_108_864)));
        for bad in ["", "-1", "12abc", "99999999999999999999999", "1.5", "\u{0}"] {
            assert!(single("f", bad).is_err(), "{bad:?}");
        }
        let long = "x".repeat(10_000);
        let Err(ParseError::NotANumber { text, .. }) = single("f", &long) else { panic!() };
        assert_eq!(text.len(), QUOTE, "errors quote a bounded part");
    }

    #[test]
    fn keyed_files() {
        let stat = "cache 49152\nrss 61440\ntotal_inactive_file 4096\nhierarchical_memory_limit 9223372036854771712\n";
        assert_eq!(keyed("memory.stat", stat, "total_inactive_file"), Ok(4096));
        assert_eq!(keyed("memory.stat", stat, "hierarchical_memory_limit"), Ok(9_223_372_036_854_771_712));
        assert_eq!(
            keyed("memory.stat", stat, "inactive_file"),
            Err(ParseError::Missing { file: "memory.stat", key: "inactive_file" }),
            "a key is a whole word, not a suffix"
        );
        assert!(keyed("memory.stat", "total_inactive_file\n", "total_inactive_file").is_err());
        assert!(keyed("memory.stat", "total_inactive_file lots\n", "total_inactive_file").is_err());
        assert!(keyed("memory.stat", "total_inactive_file 184467440737095516150\n", "total_inactive_file").is_err());
    }

    #[test]
    fn block_io() {
        let v1 = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:0 Async 2\n8:0 Discard 0\n8:0 Total 12288\n8:16 Read 1\nTotal 12289\n";
        assert_eq!(blkio_v1("blkio", v1), Ok((4097, 8192)));
        assert_eq!(blkio_v1("blkio", "Total 0\n"), Ok((0, 0)));
        assert!(blkio_v1("blkio", "8:0 Read\n").is_err());
        assert!(blkio_v1("blkio", "8:0 Read -5\n").is_err());
        let v2 =
            "8:0 rbytes=90112 wbytes=4096 rios=3 wios=1 dbytes=0 dios=0\n253:0 rbytes=10 wbytes=20 rios=1 wios=1\n";
        assert_eq!(io_stat_v2("io.stat", v2), Ok((90122, 4116)));
        assert_eq!(io_stat_v2("io.stat", ""), Ok((0, 0)));
        assert!(io_stat_v2("io.stat", "8:0 rbytes\n").is_err());
        assert!(io_stat_v2("io.stat", "8:0 rbytes=x\n").is_err());
        // Huge values saturate rather than wrap.
        let huge = format!("8:0 rbytes={m} wbytes=0\n8:16 rbytes={m} wbytes=0\n", m = u64::MAX);
        assert_eq!(io_stat_v2("io.stat", &huge), Ok((u64::MAX, 0)));
    }

    #[test]
    fn cpu_quota() {
        assert_eq!(cpu_max_v2("cpu.max", "max 100000\n"), Ok(None));
        assert_eq!(cpu_max_v2("cpu.max", "50000 100000\n"), Ok(Some(0.5)));
        assert!(cpu_max_v2("cpu.max", "50000\n").is_err());
        assert!(cpu_max_v2("cpu.max", "a b\n").is_err());
        assert!(cpu_max_v2("cpu.max", "1 2 3\n").is_err());
        assert_eq!(cpu_max_v2("cpu.max", "50000 0\n"), Ok(None));
        assert_eq!(quota_cpus(-1, 100_000), None);
        assert_eq!(quota_cpus(150_000, 100_000), Some(1.5));
        assert_eq!(signed("q", "-1\n"), Ok(-1));
    }

    #[test]
    fn network_counters() {
        let dev = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:     736       8    0    0    0     0          0         0       42       1    0    0    0     0       0          0
  eth1:      64       1    0    0    0     0          0         0        8       1    0    0    0     0       0          0
";
        assert_eq!(net_dev("net/dev", dev), Ok((800, 50)));
        assert_eq!(net_dev("net/dev", "a\nb\n"), Ok((0, 0)));
        assert!(net_dev("net/dev", "a\nb\n  eth0: 1 2 3\n").is_err());
        assert!(net_dev("net/dev", "a\nb\n  eth0 1 2 3\n").is_err());
        let bad = "a\nb\n  eth0: x 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert!(net_dev("net/dev", bad).is_err());
    }

    #[test]
    fn proc_cgroup_lines() {
        let v1 = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n";
        let p = proc_cgroup(v1);
        assert_eq!(p[0], (vec!["cpu", "cpuacct"], "/docker/abc"));
        assert_eq!(p[3], (vec![], "/docker/abc"));
        assert!(proc_cgroup("garbage\n\n:::\n").iter().all(|(_, path)| path.is_empty() || *path == ":"));
    }
}
