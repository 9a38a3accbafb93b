//! `ferrokms serve` keeps secrets out of swap: its memory is locked where the process may lock
//! without a limit (root, or RLIMIT_MEMLOCK unlimited), and where it may not, it says so at
//! start; `--no-memory-lock` leaves memory unlocked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

mod support;

use std::process::Command;

/// `VmLck` of a process, in KiB.
fn locked_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmLck:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn may_lock_without_limit() -> bool {
    let limit = std::fs::read_to_string("/proc/self/limits").unwrap();
    let unlimited = limit.lines().any(|l| l.starts_with("Max locked memory") && l.contains("unlimited"));
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    unlimited || root
}

#[test]
fn memory_is_locked_where_the_os_allows_and_said_where_not() {
    if !std::path::Path::new("/proc/self/status").exists() {
        println!("SKIPPED: no /proc (not Linux)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = support::serve(&dir.path().join("a"));
    let warned = server.first_output.iter().any(|l| l.contains("memory is not locked"));
    if may_lock_without_limit() {
        assert!(locked_kib(server.child.id()) > 0, "memory locked: {:?}", server.first_output);
        assert!(!warned, "{:?}", server.first_output);
    } else {
        assert_eq!(locked_kib(server.child.id()), 0);
        assert!(warned, "a finite RLIMIT_MEMLOCK is reported: {:?}", server.first_output);
    }
    server.stop();
    let mut command = Command::new(support::BIN);
    command.env("FERROKMS_NO_MEMORY_LOCK", "true");
    let unlocked = support::try_serve(command, &dir.path().join("b")).unwrap();
    assert_eq!(locked_kib(unlocked.child.id()), 0, "--no-memory-lock");
    unlocked.stop();
}
