//! Numbers for people: sizes, durations, sparkline points.

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// `3725` → `1h 2m`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A CPU figure for people: `12.345` → `12.3%`. Never a negative: a
/// negative, NaN or negative-zero reading (an empty float sum is `-0.0`)
/// shows as `0.0%`.
pub fn human_percent(v: f64) -> String {
    format!("{:.1}%", clamp_percent(v))
}

/// `v` as a meter value: 0 for negative or NaN readings, never `-0.0`.
pub fn clamp_percent(v: f64) -> f64 {
    if v > 0.0 {
        v
    } else {
        0.0
    }
}

/// SVG polyline points for a sparkline of `values` in a `w`×`h` box.
pub fn sparkline_points(values: &[f64], w: f64, h: f64) -> String {
    if values.is_empty() {
        return String::new();
    }
    let max = values.iter().copied().fold(f64::MIN, f64::max).max(1e-9);
    let step = if values.len() > 1 { w / (values.len() - 1) as f64 } else { 0.0 };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", i as f64 * step, h - (v / max).clamp(0.0, 1.0) * h))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The headline area's line about updates: "1 update available", "3 updates available".
pub fn count_updates(n: usize) -> String {
    if n == 1 {
        "1 container has an update available".to_owned()
    } else {
        format!("{n} containers have updates available")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_counts_read_well() {
        assert_eq!(count_updates(1), "1 container has an update available");
        assert_eq!(count_updates(3), "3 containers have updates available");
    }

    #[test]
    fn humans() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_duration(3725), "1h 2m");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(sparkline_points(&[0.0, 1.0], 10.0, 10.0), "0.0,10.0 10.0,0.0");
    }

    #[test]
    fn percentages_are_never_negative() {
        assert_eq!(human_percent(12.345), "12.3%");
        assert_eq!(human_percent(-0.0), "0.0%");
        assert_eq!(human_percent(-0.04), "0.0%", "rounds to a negative zero");
        assert_eq!(human_percent(-3.0), "0.0%");
        assert_eq!(human_percent(f64::NAN), "0.0%");
        assert!(clamp_percent(-0.0).is_sign_positive());
        assert_eq!(clamp_percent(250.0), 250.0);
    }
}
