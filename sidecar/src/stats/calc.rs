//! The arithmetic of `docker stats`, on engine stats responses. Pure.

use std::collections::HashMap;

use bollard::models::ContainerStatsResponse;
use shared::StatsSample;

/// A cumulative CPU reading, kept between rounds to compute the next delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuReading {
    pub total: u64,
    pub system: u64,
    pub online: u32,
}

/// `docker stats`' CPU %: the container's share of the host's CPU time over
/// the interval, times the number of online CPUs (100 % = one core).
pub fn cpu_percent(prev: &CpuReading, cur: &CpuReading) -> Option<f64> {
    let cpu_delta = cur.total.checked_sub(prev.total)?;
    let system_delta = cur.system.checked_sub(prev.system)?;
    if system_delta == 0 {
        return None;
    }
    Some(cpu_delta as f64 / system_delta as f64 * f64::from(cur.online.max(1)) * 100.0)
}

/// `docker stats`' memory: usage minus inactive page cache
/// (`total_inactive_file` on cgroup v1, `inactive_file` on v2).
pub fn memory_used(usage: u64, stats: &HashMap<String, u64>) -> u64 {
    let cache = stats.get("total_inactive_file").or_else(|| stats.get("inactive_file")).copied().unwrap_or(0);
    if cache < usage {
        usage - cache
    } else {
        usage
    }
}

fn reading(s: Option<&bollard::models::ContainerCpuStats>) -> Option<CpuReading> {
    let s = s?;
    let total = s.cpu_usage.as_ref()?.total_usage?;
    let system = s.system_cpu_usage?;
    let online = s
        .online_cpus
        .filter(|n| *n > 0)
        .or_else(|| s.cpu_usage.as_ref()?.percpu_usage.as_ref().map(|v| v.len() as u32))
        .unwrap_or(1);
    Some(CpuReading { total, system, online })
}

/// Builds a sample. The engine's one-shot answer has no `precpu_stats`, so the
/// previous reading is the one this sidecar kept from its last round.
pub fn sample(
    id: &str,
    r: &ContainerStatsResponse,
    prev: Option<&CpuReading>,
    now_ms: i64,
) -> (StatsSample, Option<CpuReading>) {
    let cur = reading(r.cpu_stats.as_ref());
    let pre = reading(r.precpu_stats.as_ref()).filter(|p| p.system > 0).or(prev.copied());
    let cpu_percent = match (pre, cur) {
        (Some(p), Some(c)) => cpu_percent(&p, &c),
        _ => None,
    };
    let mem = r.memory_stats.as_ref();
    let usage = mem.and_then(|m| m.usage).unwrap_or(0);
    let memory_bytes = mem.and_then(|m| m.stats.as_ref()).map_or(usage, |s| memory_used(usage, s));
    let (mut rx, mut tx) = (0u64, 0u64);
    for n in r.networks.iter().flat_map(|m| m.values()) {
        rx = rx.saturating_add(n.rx_bytes.unwrap_or(0));
        tx = tx.saturating_add(n.tx_bytes.unwrap_or(0));
    }
    let (mut br, mut bw) = (0u64, 0u64);
    for e in r.blkio_stats.iter().flat_map(|b| b.io_service_bytes_recursive.iter().flatten()) {
        let v = e.value.unwrap_or(0);
        match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => br = br.saturating_add(v),
            Some("write") => bw = bw.saturating_add(v),
            _ => {}
        }
    }
    let time_ms = r
        .read
        .as_deref()
        .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        .filter(|t| t.year() > 1)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(now_ms);
    let s = StatsSample {
        id: id.to_owned(),
        time_ms,
        cpu_percent,
        memory_bytes,
        memory_limit_bytes: mem.and_then(|m| m.limit).unwrap_or(0),
        net_rx_bytes: rx,
        net_tx_bytes: tx,
        block_read_bytes: br,
        block_write_bytes: bw,
        pids: r.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
    };
    (s, cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats};

    #[test]
    fn cpu_like_docker_stats() {
        // 0.5 s of container CPU over 2 s of all-CPU time on 4 CPUs = 100 % (one core).
        let p = CpuReading { total: 1_000_000_000, system: 10_000_000_000, online: 4 };
        let c = CpuReading { total: 1_500_000_000, system: 12_000_000_000, online: 4 };
        assert!((cpu_percent(&p, &c).unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(cpu_percent(&c, &c), None);
        // Counters going backwards (container restarted) give no value, not nonsense.
        assert_eq!(cpu_percent(&c, &p), None);
    }

    #[test]
    fn memory_minus_cache() {
        let v1: HashMap<String, u64> = [("total_inactive_file".into(), 300), ("inactive_file".into(), 999)].into();
        assert_eq!(memory_used(1000, &v1), 700);
        let v2: HashMap<String, u64> = [("inactive_file".into(), 100)].into();
        assert_eq!(memory_used(1000, &v2), 900);
        assert_eq!(memory_used(50, &v2), 50);
        assert_eq!(memory_used(1000, &HashMap::new()), 1000);
    }

    #[test]
    fn sample_uses_kept_reading_when_one_shot() {
        let cpu = |total, system| ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage { total_usage: Some(total), ..Default::default() }),
            system_cpu_usage: Some(system),
            online_cpus: Some(2),
            ..Default::default()
        };
        let r = ContainerStatsResponse {
            cpu_stats: Some(cpu(300, 2000)),
            precpu_stats: Some(ContainerCpuStats::default()),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(1000),
                limit: Some(4000),
                stats: Some([("total_inactive_file".into(), 200)].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (first, reading) = sample("x", &r, None, 5);
        assert_eq!(first.cpu_percent, None);
        assert_eq!(first.memory_bytes, 800);
        assert_eq!(first.memory_limit_bytes, 4000);
        assert_eq!(first.time_ms, 5);
        let prev = CpuReading { total: 100, system: 1000, online: 2 };
        let (second, _) = sample("x", &r, Some(&prev), 5);
        // (200 / 1000) * 2 * 100 = 40 %
        assert!((second.cpu_percent.unwrap() - 40.0).abs() < 1e-9);
        assert_eq!(reading, Some(CpuReading { total: 300, system: 2000, online: 2 }));
    }
}
