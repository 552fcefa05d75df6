//! `dockward-bench`: sets up N labelled test containers on the real local
//! dockerd, runs the scenarios side by side with the alternatives, and writes
//! BENCHMARKS.md (with the machine) and a JSON file. Run it with
//! `bash bench/run.sh` (which builds the release binaries first).

mod rig;
mod scenarios;

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
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cli = Cli::parse();
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
    rig::remove_all();

    let machine = machine();
    let report = markdown(&figures, &machine, &cli.command);
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

fn markdown(figures: &[Figure], m: &serde_json::Value, command: &str) -> String {
    let s = |k: &str| m[k].as_str().unwrap_or("?").to_owned();
    let mut out = String::new();
    out.push_str("<!-- generated by dockward-bench; the analysis below the table is written by hand -->\n");
    out.push_str("## Figures\n\n");
    out.push_str(&format!(
        "Measured {} with `{command}` on {} ({} cores, {}), Linux {}, cgroup {}, Docker {}, {}.\n\n",
        s("date"),
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
