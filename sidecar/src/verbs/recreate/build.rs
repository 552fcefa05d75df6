//! Rebuild from source: a compose service that is built locally (`build:` in
//! its compose file) is built again through the engine's build endpoint,
//! then recreated. Only when the operator opted in: the project's directory
//! mounted read-only into the sidecar at the same path as on the host, under
//! `DOCKWARD_BUILD_ROOT`. The compose file, context and Dockerfile must all
//! lie under that root (symlinks resolved); the context sent is bounded
//! (`DOCKWARD_BUILD_CONTEXT_MAX`), symlinks in it are sent as links (never
//! followed), `.git` and what `.dockerignore` names (plain paths and
//! directory prefixes) are left out.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// Compose's labels on the containers it makes.
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
pub const WORKING_DIR_LABEL: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES_LABEL: &str = "com.docker.compose.project.config_files";

/// Largest compose file read.
const COMPOSE_FILE_MAX: u64 = 1 << 20;
/// Most files and directories in a context.
const CONTEXT_ENTRIES_MAX: usize = 100_000;
/// Most build arguments.
const BUILD_ARGS_MAX: usize = 256;

/// How to build a service's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub service: String,
    /// The context directory (canonical, under the build root).
    pub context: PathBuf,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    pub target: Option<String>,
    pub args: HashMap<String, String>,
    /// The tag to build: the image reference the container was created from.
    pub tag: String,
}

/// Why a container cannot be rebuilt: said on its card, answered as 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotBuildable(pub String);

fn no(why: impl Into<String>) -> NotBuildable {
    NotBuildable(why.into())
}

/// Whether `labels` name a compose service, before any file is read.
pub fn is_compose(labels: &HashMap<String, String>) -> bool {
    labels.contains_key(SERVICE_LABEL) && labels.contains_key(CONFIG_FILES_LABEL)
}

fn inside(root: &Path, p: &Path, what: &str) -> Result<PathBuf, NotBuildable> {
    let real = p.canonicalize().map_err(|e| no(format!("{what} {}: {e}", p.display())))?;
    if real.starts_with(root) {
        Ok(real)
    } else {
        Err(no(format!("{what} {} is outside DOCKWARD_BUILD_ROOT", p.display())))
    }
}

/// The build of the compose service a container belongs to, from its
/// labels and its compose file(s) under `root`.
pub fn plan(
    root: Option<&Path>,
    labels: &HashMap<String, String>,
    configured_image: &str,
) -> Result<BuildPlan, NotBuildable> {
    let service = labels.get(SERVICE_LABEL).ok_or_else(|| no("not a compose service"))?;
    let root = root.ok_or_else(|| {
        no("rebuild needs the compose project's directory mounted read-only into the sidecar and DOCKWARD_BUILD_ROOT set (see SECURITY.md)")
    })?;
    let root = root.canonicalize().map_err(|e| no(format!("DOCKWARD_BUILD_ROOT: {e}")))?;
    let files = labels.get(CONFIG_FILES_LABEL).ok_or_else(|| no("its compose labels name no compose file"))?;
    let working_dir = labels.get(WORKING_DIR_LABEL).map(PathBuf::from);
    let mut build: Option<(serde_yaml::Value, PathBuf)> = None;
    for file in files.split(',').map(str::trim).filter(|f| !f.is_empty()).take(16) {
        let path = inside(&root, Path::new(file), "the compose file")?;
        let meta = std::fs::metadata(&path).map_err(|e| no(format!("{file}: {e}")))?;
        if meta.len() > COMPOSE_FILE_MAX {
            return Err(no(format!("{file} is larger than {COMPOSE_FILE_MAX} bytes")));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| no(format!("{file}: {e}")))?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| no(format!("{file}: {e}")))?;
        // A later file overrides an earlier one, as compose merges them.
        if let Some(b) = doc.get("services").and_then(|s| s.get(service.as_str())).and_then(|s| s.get("build")) {
            let dir = working_dir.clone().or_else(|| path.parent().map(Path::to_owned)).unwrap_or_default();
            build = Some((b.clone(), dir));
        }
    }
    let (build, project_dir) =
        build.ok_or_else(|| no(format!("service {service} has no build: in its compose file")))?;
    let str_of = |v: &serde_yaml::Value| v.as_str().map(str::to_owned);
    let (context, dockerfile, target, args) = match &build {
        serde_yaml::Value::String(c) => (c.clone(), None, None, HashMap::new()),
        serde_yaml::Value::Mapping(_) => {
            let args = match build.get("args") {
                Some(serde_yaml::Value::Mapping(m)) => m
                    .iter()
                    .filter_map(|(k, v)| {
                        let v = match v {
                            serde_yaml::Value::String(s) => s.clone(),
                            serde_yaml::Value::Number(n) => n.to_string(),
                            serde_yaml::Value::Bool(b) => b.to_string(),
                            _ => return None,
                        };
                        Some((str_of(k)?, v))
                    })
                    .collect(),
                Some(serde_yaml::Value::Sequence(s)) => s
                    .iter()
                    .filter_map(|v| v.as_str()?.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
                    .collect(),
                _ => HashMap::new(),
            };
            (
                build.get("context").and_then(str_of).unwrap_or_else(|| ".".into()),
                build.get("dockerfile").and_then(str_of),
                build.get("target").and_then(str_of),
                args,
            )
        }
        _ => return Err(no("its build: is neither a path nor a mapping")),
    };
    if args.len() > BUILD_ARGS_MAX {
        return Err(no(format!("more than {BUILD_ARGS_MAX} build args")));
    }
    if context.contains("://") || context.starts_with("git@") {
        return Err(no("a remote build context: only directories on this host are built"));
    }
    let context = inside(&root, &project_dir.join(&context), "the build context")?;
    let dockerfile = dockerfile.unwrap_or_else(|| "Dockerfile".into());
    let relative = Path::new(&dockerfile);
    if relative.is_absolute() || relative.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(no(format!("the Dockerfile {dockerfile:?} must lie inside the build context")));
    }
    inside(&context, &context.join(relative), "the Dockerfile")?;
    shared::ImageRef::parse(configured_image).map_err(|_| no("the container was not created from an image tag"))?;
    Ok(BuildPlan {
        service: service.clone(),
        context,
        dockerfile,
        target: target.filter(|t| !t.is_empty()),
        args,
        tag: configured_image.to_owned(),
    })
}

/// `.dockerignore`'s plain entries: paths and directory prefixes (`#`
/// comments, `!` exceptions and glob characters are not understood: such
/// lines are skipped, so more is sent, never less).
fn ignored(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default();
    text.lines()
        .map(|l| l.trim().trim_start_matches("./").trim_end_matches('/').to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!') && !l.contains(['*', '?', '[']))
        .collect()
}

/// The context as a tar archive, at most `max` bytes of file content.
pub fn context_tar(dir: &Path, max: u64) -> Result<Vec<u8>, NotBuildable> {
    let skip = ignored(dir);
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let mut total = 0u64;
    let mut entries = 0usize;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let read = std::fs::read_dir(dir.join(&rel)).map_err(|e| no(format!("reading the context: {e}")))?;
        let mut names: Vec<_> = read.flatten().collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let rel_path = rel.join(e.file_name());
            let shown = rel_path.to_string_lossy().into_owned();
            if shown == ".git" || skip.iter().any(|s| shown == *s || shown.starts_with(&format!("{s}/"))) {
                continue;
            }
            entries += 1;
            if entries > CONTEXT_ENTRIES_MAX {
                return Err(no(format!("the build context has more than {CONTEXT_ENTRIES_MAX} entries")));
            }
            let meta = e.path().symlink_metadata().map_err(|e| no(format!("reading the context: {e}")))?;
            if meta.is_file() {
                total += meta.len();
                if total > max {
                    return Err(no(format!(
                        "the build context is larger than {max} bytes (DOCKWARD_BUILD_CONTEXT_MAX)"
                    )));
                }
            }
            if meta.is_dir() {
                tar.append_dir(&rel_path, e.path()).map_err(|e| no(format!("packing the context: {e}")))?;
                stack.push(rel_path);
            } else if meta.is_file() || meta.file_type().is_symlink() {
                tar.append_path_with_name(e.path(), &rel_path).map_err(|e| no(format!("packing the context: {e}")))?;
            }
        }
    }
    tar.into_inner().map_err(|e| no(format!("packing the context: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(dir: &Path) -> HashMap<String, String> {
        HashMap::from([
            (SERVICE_LABEL.to_owned(), "web".to_owned()),
            (WORKING_DIR_LABEL.to_owned(), dir.display().to_string()),
            (CONFIG_FILES_LABEL.to_owned(), dir.join("compose.yaml").display().to_string()),
        ])
    }

    #[test]
    fn a_built_service_is_planned_from_its_compose_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().canonicalize().unwrap();
        std::fs::create_dir(p.join("app")).unwrap();
        std::fs::write(p.join("app/Dockerfile.web"), "FROM scratch\n").unwrap();
        std::fs::write(
            p.join("compose.yaml"),
            "services:\n  web:\n    build:\n      context: ./app\n      dockerfile: Dockerfile.web\n      target: prod\n      args:\n        V: 2\n  db:\n    image: postgres\n",
        )
        .unwrap();
        let plan = plan(Some(&p), &labels(&p), "shop_web").unwrap();
        assert_eq!(plan.context, p.join("app"));
        assert_eq!((plan.dockerfile.as_str(), plan.target.as_deref()), ("Dockerfile.web", Some("prod")));
        assert_eq!(plan.args.get("V").map(String::as_str), Some("2"));
        assert_eq!(plan.tag, "shop_web");
    }

    #[test]
    fn refused_without_the_root_outside_it_or_without_build() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().canonicalize().unwrap();
        std::fs::write(p.join("compose.yaml"), "services:\n  web:\n    image: nginx\n").unwrap();
        assert!(plan(None, &labels(&p), "x").unwrap_err().0.contains("DOCKWARD_BUILD_ROOT"));
        assert!(plan(Some(&p), &labels(&p), "x").unwrap_err().0.contains("no build:"));
        let other = tempfile::tempdir().unwrap();
        assert!(plan(Some(other.path()), &labels(&p), "x").unwrap_err().0.contains("outside"));
        std::fs::write(p.join("compose.yaml"), "services:\n  web:\n    build:\n      context: ..\n").unwrap();
        assert!(plan(Some(&p), &labels(&p), "x").unwrap_err().0.contains("outside"), "a context above the root");
        std::fs::write(p.join("compose.yaml"), "services:\n  web:\n    build:\n      dockerfile: ../../etc/passwd\n")
            .unwrap();
        assert!(plan(Some(&p), &labels(&p), "x").unwrap_err().0.contains("inside the build context"));
        assert!(plan(Some(&p), &HashMap::new(), "x").unwrap_err().0.contains("not a compose service"));
    }

    #[test]
    fn the_context_is_bounded_and_leaves_out_what_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(p.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::create_dir_all(p.join("node_modules/x")).unwrap();
        std::fs::write(p.join("node_modules/x/big"), vec![0u8; 4096]).unwrap();
        std::fs::create_dir(p.join(".git")).unwrap();
        std::fs::write(p.join(".dockerignore"), "# deps\nnode_modules/\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p.join("link")).unwrap();
        let bytes = context_tar(p, 1024).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "link"]);
        std::fs::write(p.join("huge"), vec![0u8; 2048]).unwrap();
        assert!(context_tar(p, 1024).unwrap_err().0.contains("larger than"));
    }
}
