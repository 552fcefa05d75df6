//! `dockward-bench`: sets up N labelled test containers on the real local
//! dockerd, runs the scenarios side by side with the alternatives, and writes
//! BENCHMARKS.md (with the machine) and a JSON file. Run it with
//! `bash bench/run.sh` (which builds the release binaries first).

mod alerts;
mod fleet;
mod history;
mod kernel;
mod live;
mod rig;
mod scenarios;
mod standin;
mod updates;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use scenarios::Figure;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    All,
    Stats,
    Cost,
    Footprint,
    Verbs,
    Console,
    /// Issue 13: 50 hosts × 100 containers (real sidecars and stand-ins), then 500 stand-in hosts.
    Fleet,
    /// Issue 14: what HTTPS with a pinned certificate adds to a cached stats request.
    Tls,
    /// Issue 14: what an outbound agent's tunnel adds to a call through the console, and the
    /// fleet scenario's 50 hosts all dialling in.
    Tunnel,
    /// Issue 15: a recreate's downtime next to the docker CLI's; what update checks cost the registry.
    Recreate,
    /// Issue 16: stats from the kernel's counters: engine cost by source, freshness, 1 000 containers.
    Kernel,
    /// Issue 17: history in the console's store: ingest at 5 000 containers, a 30-day chart, disk per container.
    History,
    /// Issue 18: alerts: rule evaluation at 5 000 containers; a container killed → the webhook received.
    Alerts,
}

#[derive(Debug, Parser)]
#[command(name = "dockward-bench", about = "Benchmarks against the real Docker engine; see BENCHMARKS.md")]
struct Cli {
    /// Which scenarios to run.
    #[arg(value_enum, default_value = "all")]
    scenario: Scenario,
    /// Fleet sizes for the stats scenarios.
    #[arg(long, env = "DOCKWARD_BENCH_SIZES", value_delimiter = ',', default_value = "50,100,200")]
    sizes: Vec<usize>,
    /// Shorter runs (a smoke test of the harness; figures are noisier).
    #[arg(long, env = "DOCKWARD_BENCH_QUICK")]
    quick: bool,
    /// Markdown report.
    #[arg(long, env = "DOCKWARD_BENCH_MD", default_value = "BENCHMARKS.md")]
    markdown: PathBuf,
    /// Machine-readable results.
    #[arg(long, env = "DOCKWARD_BENCH_JSON", default_value = "bench/results.json")]
    json: PathBuf,
    /// Browser assets served by the console (contains pkg/).
    #[arg(long, env = "DOCKWARD_SITE_ROOT", default_value = "target/site")]
    site_root: PathBuf,
    /// The command line to print in the report.
    #[arg(long, env = "DOCKWARD_BENCH_COMMAND", default_value = "bash bench/run.sh")]
    command: String,
    /// Fleet scenario: real sidecars on the local engine.
    #[arg(long, env = "DOCKWARD_BENCH_FLEET_REAL", default_value_t = 20)]
    fleet_real: usize,
    /// Fleet scenario: hosts in all at the first size (stand-ins make up the rest).
    #[arg(long, env = "DOCKWARD_BENCH_FLEET_HOSTS", default_value_t = 50)]
    fleet_hosts: usize,
    /// Fleet scenario: stand-in hosts at the second size (0 skips it).
    #[arg(long, env = "DOCKWARD_BENCH_FLEET_BIG", default_value_t = 500)]
    fleet_big: usize,
}

/// `dockward-bench standin …`: the fleet scenario's stand-in sidecar (a child process).
#[derive(Debug, Parser)]
#[command(name = "dockward-bench standin")]
struct StandinCli {
    #[command(flatten)]
    args: standin::Args,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("standin") {
        let cli = StandinCli::parse_from(std::env::args().skip(1));
        return match standin::serve(cli.args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dockward-bench standin: {e}");
                ExitCode::from(2)
            }
        };
    }
    let cli = Cli::parse();
    if cli.fleet_real == 0 || cli.fleet_real > cli.fleet_hosts {
        eprintln!("dockward-bench: --fleet-real must be between 1 and --fleet-hosts");
        return ExitCode::from(2);
    }
    if cli.sizes.iter().any(|&n| n == 0 || n > 500) {
        eprintln!("dockward-bench: --sizes must be between 1 and 500");
        return ExitCode::from(2);
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("dockward-bench: no temporary directory: {e}");
            return ExitCode::from(2);
        }
    };
    testkit::require_docker();
    rig::remove_all();
    let run = |s: Scenario| cli.scenario == Scenario::All || cli.scenario == s;
    let mut figures: Vec<Figure> = Vec::new();
    if run(Scenario::Footprint) {
        eprintln!("== footprint (idle, images)");
        figures.extend(scenarios::footprint_idle(dir.path()).await);
    }
    if run(Scenario::Stats) {
        for &n in &cli.sizes {
            eprintln!("== stats snapshot, freshness, footprint at N = {n}");
            figures.extend(scenarios::stats_at(n, dir.path(), cli.quick).await);
        }
    }
    if run(Scenario::Cost) {
        eprintln!("== daemon cost at N = 100");
        figures.extend(scenarios::daemon_cost(dir.path(), cli.quick).await);
    }
    if run(Scenario::Verbs) {
        eprintln!("== verb overhead");
        figures.extend(scenarios::verb_overhead(dir.path(), cli.quick).await);
    }
    if run(Scenario::Console) {
        eprintln!("== console (3 hosts × 100 containers)");
        figures.extend(scenarios::console(dir.path(), &cli.site_root, cli.quick).await);
    }
    if run(Scenario::Tls) {
        eprintln!("== TLS: a cached stats request, plain and pinned HTTPS (50 containers)");
        figures.extend(scenarios::tls_overhead(dir.path(), cli.quick).await);
    }
    if run(Scenario::Tunnel) {
        eprintln!("== tunnel: a call through the console to a direct host and to an outbound agent (50 containers)");
        figures.extend(scenarios::tunnel_overhead(dir.path(), &cli.site_root, cli.quick).await);
        let plan = fleet::Plan { real: cli.fleet_real, hosts: cli.fleet_hosts, big: 0, quick: cli.quick, tunnel: true };
        eprintln!("== fleet over tunnels ({} hosts, {} real, all outbound) × 100 containers", plan.hosts, plan.real);
        let mut over = fleet::fleet_scale(dir.path(), &cli.site_root, &plan).await;
        for f in &mut over {
            f.scenario = "10. fleet over tunnels".into();
        }
        figures.extend(over);
    }
    if run(Scenario::Recreate) {
        eprintln!("== recreate: downtime next to the docker CLI; update checks of 200 containers against a registry");
        figures.extend(updates::recreate_and_updates(dir.path(), cli.quick).await);
    }
    if run(Scenario::Kernel) {
        eprintln!("== kernel stats: engine cost by source (100), sidecar CPU (200), 1 000 containers");
        figures.extend(kernel::kernel_stats(dir.path(), cli.quick).await);
    }
    if run(Scenario::History) {
        eprintln!("== history: ingest at 50 × 100 containers, a 30-day chart, disk per container for 90 days");
        figures.extend(history::history(dir.path(), &cli.site_root, cli.quick).await);
    }
    if run(Scenario::Alerts) {
        eprintln!("== alerts: rule evaluation at 50 × 100 containers; a killed container to its webhook");
        figures.extend(alerts::alerts(dir.path(), &cli.site_root, cli.quick).await);
    }
    if run(Scenario::Fleet) {
        let plan = fleet::Plan {
            real: cli.fleet_real,
            hosts: cli.fleet_hosts,
            big: cli.fleet_big,
            quick: cli.quick,
            tunnel: false,
        };
        eprintln!(
            "== fleet scale ({} hosts, {} real; then {} stand-ins) × 100 containers",
            plan.hosts, plan.real, plan.big
        );
        figures.extend(fleet::fleet_scale(dir.path(), &cli.site_root, &plan).await);
    }
    rig::remove_all();

    let machine = machine();
    let this_run = format!("{} with `{}`", machine["date"].as_str().unwrap_or("?"), cli.command);
    for f in &mut figures {
        f.run = this_run.clone();
    }
    // One scenario run replaces its own rows and keeps the others' (with when they were measured).
    if cli.scenario != Scenario::All {
        figures = merge_previous(&cli.json, figures);
    }
    let report = markdown(&figures, &machine, &this_run);
    let json = serde_json::json!({ "machine": machine, "command": cli.command, "figures": figures });
    let written = std::fs::write(&cli.markdown, report)
        .and_then(|()| std::fs::write(&cli.json, serde_json::to_vec_pretty(&json).unwrap_or_default()));
    if let Err(e) = written {
        eprintln!("dockward-bench: cannot write the report: {e}");
        return ExitCode::from(2);
    }
    let missed = figures.iter().filter(|f| f.met == Some(false)).count();
    let _ = writeln!(
        std::io::stderr(),
        "wrote {} and {}: {} figures, {} targets missed",
        cli.markdown.display(),
        cli.json.display(),
        figures.len(),
        missed
    );
    ExitCode::SUCCESS
}

fn sh(cmd: &str) -> String {
    std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> serde_json::Value {
    serde_json::json!({
        "date": sh("date -u +%Y-%m-%d"),
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
        "cores": sh("nproc"),
        "memory": sh("grep MemTotal /proc/meminfo | awk '{printf \"%.1f GiB\", $2/1048576}'"),
        "kernel": sh("uname -r"),
        "docker": sh("docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})'"),
        "cgroup": sh("[ -f /sys/fs/cgroup/cgroup.controllers ] && echo v2 || echo v1"),
        "rustc": sh("rustc --version"),
    })
}

/// The previous results' figures of the scenarios not in `new`, in their
/// order, with `new` in place of the rows it replaces (or at the end).
fn merge_previous(json: &std::path::Path, new: Vec<Figure>) -> Vec<Figure> {
    let Ok(text) = std::fs::read(json) else { return new };
    let Ok(old) = serde_json::from_slice::<serde_json::Value>(&text) else { return new };
    let old_run = format!(
        "{} with `{}`",
        old["machine"]["date"].as_str().unwrap_or("?"),
        old["command"].as_str().unwrap_or("bash bench/run.sh")
    );
    let old: Vec<Figure> = old["figures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| serde_json::from_value::<Figure>(f.clone()).ok())
        .map(|mut f| {
            if f.run.is_empty() {
                f.run = old_run.clone();
            }
            f
        })
        .collect();
    let replaced = |f: &Figure| new.iter().any(|n| n.scenario == f.scenario);
    let mut out = Vec::new();
    let mut placed = false;
    for f in old {
        if replaced(&f) {
            if !placed {
                out.extend(new.iter().cloned());
                placed = true;
            }
        } else {
            out.push(f);
        }
    }
    if !placed {
        out.extend(new);
    }
    out
}

fn markdown(figures: &[Figure], m: &serde_json::Value, this_run: &str) -> String {
    let s = |k: &str| m[k].as_str().unwrap_or("?").to_owned();
    let mut out = String::new();
    out.push_str("<!-- generated by dockward-bench; the analysis below the table is written by hand -->\n");
    out.push_str("## Figures\n\n");
    // Which rows come from which run, when they are not all from this one.
    let mut runs: Vec<(&str, Vec<&str>)> = Vec::new();
    for f in figures {
        match runs.iter_mut().find(|(r, _)| *r == f.run) {
            Some((_, scenarios)) => {
                if !scenarios.contains(&f.scenario.as_str()) {
                    scenarios.push(&f.scenario);
                }
            }
            None => runs.push((&f.run, vec![&f.scenario])),
        }
    }
    let measured = if runs.len() <= 1 {
        format!("Measured {this_run}")
    } else {
        let parts: Vec<String> = runs.iter().map(|(r, scenarios)| format!("{} ({r})", scenarios.join(", "))).collect();
        format!("Measured in several runs: {}", parts.join("; "))
    };
    out.push_str(&format!(
        "{measured} on {} ({} cores, {}), Linux {}, cgroup {}, Docker {}, {}.\n\n",
        s("cpu"),
        s("cores"),
        s("memory"),
        s("kernel"),
        s("cgroup"),
        s("docker"),
        s("rustc")
    ));
    out.push_str("| scenario | measure | N | value | target | met | note |\n|---|---|---|---|---|---|---|\n");
    for f in figures {
        out.push_str(&format!(
            "| {} | {} | {} | {} {} | {} | {} | {} |\n",
            f.scenario,
            f.metric,
            f.n.map(|n| n.to_string()).unwrap_or_default(),
            fmt_value(f.value),
            f.unit,
            f.target.as_deref().unwrap_or(""),
            match f.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            },
            f.note
        ));
    }
    out
}

fn fmt_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
