//! dockward-web: the web console. A stub until the web console issue; it
//! already depends on `shared` so the workspace checks keep it honest (and
//! the test script fails if it ever links a Docker client).

fn main() {
    eprintln!("dockward-web {}: the web console is not built yet", env!("CARGO_PKG_VERSION"));
    std::process::exit(1);
}
