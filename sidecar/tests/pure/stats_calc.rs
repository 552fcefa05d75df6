//! `sidecar::stats::calc`: the arithmetic of `docker stats` with known
//! inputs and exact outputs.

use std::collections::HashMap;

use bollard::models::{
    ContainerBlkioStatEntry, ContainerBlkioStats, ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats,
    ContainerNetworkStats, ContainerPidsStats, ContainerStatsResponse,
};
use sidecar::stats::calc::{cpu_percent, memory_used, sample, CpuReading};

fn cpu(total: u64, system: u64, online: Option<u32>, percpu: Option<usize>) -> ContainerCpuStats {
    ContainerCpuStats {
        cpu_usage: Some(ContainerCpuUsage {
            total_usage: Some(total),
            percpu_usage: percpu.map(|n| vec![0; n]),
            ..Default::default()
        }),
        system_cpu_usage: Some(system),
        online_cpus: online,
        ..Default::default()
    }
}

fn blkio(op: &str, value: u64) -> ContainerBlkioStatEntry {
    ContainerBlkioStatEntry { op: Some(op.into()), value: Some(value), ..Default::default() }
}

#[test]
fn cpu_percent_exact() {
    let r = |total, system, online| CpuReading { total, system, online };
    // 50 of 200 ticks on 3 CPUs: 0.25 × 3 × 100 = 75 % (exact in binary).
    assert_eq!(cpu_percent(&r(100, 1000, 3), &r(150, 1200, 3)), Some(75.0));
    // The current reading's CPU count counts, not the previous one's.
    assert_eq!(cpu_percent(&r(100, 1000, 1), &r(150, 1200, 2)), Some(50.0));
    // No CPU count: one.
    assert_eq!(cpu_percent(&r(0, 0, 0), &r(50, 100, 0)), Some(50.0));
    // More than the interval (a delta bigger than the system's): not clamped.
    assert_eq!(cpu_percent(&r(0, 0, 1), &r(300, 100, 1)), Some(300.0));
    // Idle.
    assert_eq!(cpu_percent(&r(10, 10, 4), &r(10, 20, 4)), Some(0.0));
    // No system time passed, or a counter went backwards: no value.
    assert_eq!(cpu_percent(&r(10, 10, 4), &r(20, 10, 4)), None);
    assert_eq!(cpu_percent(&r(10, 10, 4), &r(5, 20, 4)), None);
    assert_eq!(cpu_percent(&r(10, 10, 4), &r(20, 5, 4)), None);
}

#[test]
fn memory_used_exact() {
    let stats = |k: &str, v: u64| -> HashMap<String, u64> { [(k.to_string(), v)].into() };
    assert_eq!(memory_used(1000, &stats("inactive_file", 1)), 999);
    assert_eq!(memory_used(1000, &stats("total_inactive_file", 999)), 1);
    // A cache as large as the usage (or larger) is not subtracted.
    assert_eq!(memory_used(1000, &stats("inactive_file", 1000)), 1000);
    assert_eq!(memory_used(1000, &stats("inactive_file", 5000)), 1000);
    assert_eq!(memory_used(0, &stats("inactive_file", 0)), 0);
    assert_eq!(memory_used(7, &stats("cache", 5)), 7);
}

#[test]
fn a_full_sample_sums_networks_and_block_io() {
    let r = ContainerStatsResponse {
        read: Some("2026-11-24T10:00:00.123456789Z".into()),
        cpu_stats: Some(cpu(1_500, 12_000, Some(2), None)),
        precpu_stats: Some(cpu(1_000, 10_000, Some(2), None)),
        memory_stats: Some(ContainerMemoryStats {
            usage: Some(10_000),
            limit: Some(1 << 30),
            stats: Some([("inactive_file".to_string(), 2_500)].into()),
            ..Default::default()
        }),
        networks: Some(
            [
                (
                    "eth0".to_string(),
                    ContainerNetworkStats { rx_bytes: Some(100), tx_bytes: Some(10), ..Default::default() },
                ),
                (
                    "eth1".to_string(),
                    ContainerNetworkStats { rx_bytes: Some(23), tx_bytes: None, ..Default::default() },
                ),
            ]
            .into(),
        ),
        blkio_stats: Some(ContainerBlkioStats {
            io_service_bytes_recursive: Some(vec![
                blkio("Read", 4096),
                blkio("Write", 512),
                blkio("read", 4),
                blkio("write", 1),
                blkio("Total", 999_999),
                blkio("Sync", 7),
            ]),
            ..Default::default()
        }),
        pids_stats: Some(ContainerPidsStats { current: Some(17), limit: Some(100) }),
        ..Default::default()
    };
    let prev = CpuReading { total: 0, system: 0, online: 2 };
    let (s, reading) = sample("abc", &r, Some(&prev), 42);
    assert_eq!(s.id, "abc");
    // 1 795 514 400 s and 123.456789 ms.
    assert_eq!(s.time_ms, 1_795_514_400_123);
    // The engine's own precpu reading wins over the kept one: 500 / 2000 × 2 × 100.
    assert_eq!(s.cpu_percent, Some(50.0));
    assert_eq!(s.memory_bytes, 7_500);
    assert_eq!(s.memory_limit_bytes, 1 << 30);
    assert_eq!((s.net_rx_bytes, s.net_tx_bytes), (123, 10));
    assert_eq!((s.block_read_bytes, s.block_write_bytes), (4100, 513));
    assert_eq!(s.pids, 17);
    assert_eq!(reading, Some(CpuReading { total: 1_500, system: 12_000, online: 2 }));
}

#[test]
fn an_empty_answer_gives_zeros_and_the_callers_clock() {
    let (s, reading) = sample("x", &ContainerStatsResponse::default(), None, 1234);
    assert_eq!(s.time_ms, 1234);
    assert_eq!(s.cpu_percent, None);
    assert_eq!((s.memory_bytes, s.memory_limit_bytes, s.net_rx_bytes, s.net_tx_bytes, s.pids), (0, 0, 0, 0, 0));
    assert_eq!((s.block_read_bytes, s.block_write_bytes), (0, 0));
    assert_eq!(reading, None);
    // The engine's zero time (a container that is not running) and garbage: the caller's clock.
    for read in ["0001-01-01T00:00:00Z", "not a time"] {
        let r = ContainerStatsResponse { read: Some(read.into()), ..Default::default() };
        assert_eq!(sample("x", &r, None, 99).0.time_ms, 99, "{read}");
    }
    // Year 2 is a real time, however odd.
    let r = ContainerStatsResponse { read: Some("0002-01-01T00:00:00Z".into()), ..Default::default() };
    assert_ne!(sample("x", &r, None, 99).0.time_ms, 99);
    // Memory without stats: the usage as is.
    let r = ContainerStatsResponse {
        memory_stats: Some(ContainerMemoryStats { usage: Some(77), ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(sample("x", &r, None, 0).0.memory_bytes, 77);
}

#[test]
fn a_zero_precpu_falls_back_to_the_kept_reading() {
    // One-shot answers carry a precpu with system 0: it is ignored.
    let r = ContainerStatsResponse {
        cpu_stats: Some(cpu(600, 3_000, Some(1), None)),
        precpu_stats: Some(cpu(0, 0, Some(1), None)),
        ..Default::default()
    };
    assert_eq!(sample("x", &r, None, 0).0.cpu_percent, None);
    let kept = CpuReading { total: 100, system: 1_000, online: 1 };
    // 500 / 2000 × 1 × 100.
    assert_eq!(sample("x", &r, Some(&kept), 0).0.cpu_percent, Some(25.0));
}

#[test]
fn cpu_count_falls_back_to_per_cpu_usage_then_one() {
    let with =
        |online, percpu| ContainerStatsResponse { cpu_stats: Some(cpu(10, 20, online, percpu)), ..Default::default() };
    let online = |r: &ContainerStatsResponse| sample("x", r, None, 0).1.unwrap().online;
    assert_eq!(online(&with(Some(4), Some(2))), 4);
    assert_eq!(online(&with(Some(0), Some(3))), 3);
    assert_eq!(online(&with(None, Some(3))), 3);
    assert_eq!(online(&with(Some(0), None)), 1);
    assert_eq!(online(&with(None, None)), 1);
    // No total or no system usage: no reading.
    let mut c = cpu(10, 20, Some(1), None);
    c.system_cpu_usage = None;
    let r = ContainerStatsResponse { cpu_stats: Some(c), ..Default::default() };
    assert_eq!(sample("x", &r, None, 0).1, None);
}
