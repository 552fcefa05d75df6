//! A network namespace for a process that must be reachable only by the
//! connections it opens itself: a veth pair to the test's namespace, and a
//! firewall in the namespace that drops every new inbound connection (those
//! it dials out, and their answers, pass). Needs root, `ip` and `iptables`
//! (Debian's iproute2 and iptables); without them the test fails loudly.

use std::process::Command;

pub struct Namespace {
    pub name: String,
    /// The test's side of the link: what the namespace dials.
    pub outside: String,
    /// The namespace's own address: where inbound connections would go.
    pub inside: String,
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Namespace {
    /// A namespace whose inbound connections are dropped.
    pub fn isolated() -> Self {
        // A /30 of its own per process: two tests' namespaces never share addresses.
        let n = std::process::id() % 250 + 1;
        let name = format!("dw-ns-{}", std::process::id());
        let (outside, inside) = (format!("10.231.{n}.1"), format!("10.231.{n}.2"));
        let (veth_out, veth_in) = (format!("dwo{}", std::process::id()), format!("dwi{}", std::process::id()));
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(&["ip", "netns", "add", &name]);
        let ns = Self { name: name.clone(), outside: outside.clone(), inside: inside.clone() };
        run(&["ip", "link", "add", &veth_out, "type", "veth", "peer", "name", &veth_in]);
        run(&["ip", "link", "set", &veth_in, "netns", &name]);
        run(&["ip", "addr", "add", &format!("{outside}/30"), "dev", &veth_out]);
        run(&["ip", "link", "set", &veth_out, "up"]);
        ns.exec(&["ip", "addr", "add", &format!("{inside}/30"), "dev", &veth_in]);
        ns.exec(&["ip", "link", "set", &veth_in, "up"]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        // Inbound: only what belongs to connections the namespace opened.
        ns.exec(&["iptables", "-A", "INPUT", "-i", &veth_in, "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"]);
        ns
    }

    /// Runs a command in the namespace; panics if it fails.
    pub fn exec(&self, args: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        run(&all);
    }

    /// A command to spawn in the namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Its end of the veth pair goes with it, and so does ours.
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}
