//! The web console links no Docker client: checked on the crate graph that
//! `cargo metadata` resolves (every target platform, normal and build
//! dependencies), not on a list of known client names. A crate is refused when
//! its own metadata says it speaks to a container engine, or when it carries
//! HTTP over a Unix socket (the way to the engine's socket). If `cargo metadata`
//! fails, the test fails: a check that cannot run must not pass.

use std::collections::{HashMap, HashSet};
use std::process::Command;

use serde_json::Value;

struct Graph {
    packages: HashMap<String, Value>,
    deps: HashMap<String, Vec<String>>,
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version=1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let packages = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("package id").to_owned(), p.clone()))
        .collect();
    let mut deps = HashMap::new();
    for node in meta["resolve"]["nodes"].as_array().expect("a resolved graph") {
        let id = node["id"].as_str().expect("node id").to_owned();
        // Dev-dependencies (tests) are not linked into the console.
        let linked = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null() || k["kind"] == "build"))
            })
            .map(|d| d["pkg"].as_str().expect("dep pkg").to_owned())
            .collect();
        deps.insert(id, linked);
    }
    Graph { packages, deps }
}

impl Graph {
    fn id_of(&self, name: &str) -> String {
        self.packages
            .iter()
            .find(|(_, p)| p["name"] == name)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("{name} is not in the workspace graph"))
    }

    /// Every crate linked into `root`, with the path that brings it in.
    fn closure(&self, root: &str) -> HashMap<String, Vec<String>> {
        let root = self.id_of(root);
        let mut seen = HashMap::from([(root.clone(), vec![self.name(&root)])]);
        let mut todo = vec![root];
        while let Some(id) = todo.pop() {
            let path = seen[&id].clone();
            for dep in self.deps.get(&id).into_iter().flatten() {
                if !seen.contains_key(dep) {
                    let mut p = path.clone();
                    p.push(self.name(dep));
                    seen.insert(dep.clone(), p);
                    todo.push(dep.clone());
                }
            }
        }
        seen
    }

    fn name(&self, id: &str) -> String {
        self.packages[id]["name"].as_str().unwrap_or(id).to_owned()
    }

    /// Why a crate counts as a way to the Docker engine, if it does.
    fn engine_client(&self, id: &str) -> Option<&'static str> {
        let p = &self.packages[id];
        if p["name"] == "dockward-sidecar" {
            return Some("is the sidecar");
        }
        // The workspace's own crates describe dockward (a Docker console); what
        // they link is checked crate by crate.
        if p["source"].is_null() {
            return None;
        }
        let text = |v: &Value| v.as_str().unwrap_or("").to_ascii_lowercase();
        let keywords: HashSet<String> = p["keywords"].as_array().into_iter().flatten().map(text).collect();
        let about = format!(
            "{} {} {}",
            text(&p["name"]),
            text(&p["description"]),
            keywords.iter().cloned().collect::<Vec<_>>().join(" ")
        );
        if ["docker", "podman", "containerd", "moby"].iter().any(|w| about.contains(w)) {
            return Some("describes itself as a container-engine client");
        }
        let unix = keywords.contains("unix") || about.contains("unix domain socket") || about.contains("unix socket");
        if unix && (keywords.contains("http") || keywords.contains("hyper") || about.contains("http")) {
            return Some("carries HTTP over a Unix socket");
        }
        None
    }

    fn engine_clients(&self, root: &str) -> Vec<String> {
        let mut found: Vec<String> = self
            .closure(root)
            .into_iter()
            .filter_map(|(id, path)| {
                self.engine_client(&id).map(|why| format!("{} {why} (via {})", self.name(&id), path.join(" → ")))
            })
            .collect();
        found.sort();
        found
    }
}

#[test]
fn the_console_links_no_docker_client() {
    let g = graph();
    let found = g.engine_clients("dockward-frontend");
    assert!(found.is_empty(), "the web console links a way to the Docker engine:\n{}", found.join("\n"));
}

#[test]
fn the_check_finds_the_sidecars_docker_client() {
    // The same check on the sidecar must find its client, or it proves nothing.
    let found = graph().engine_clients("dockward-sidecar");
    assert!(found.iter().any(|f| f.starts_with("bollard ")), "{found:#?}");
    assert!(found.iter().any(|f| f.starts_with("hyperlocal ")), "{found:#?}");
}
