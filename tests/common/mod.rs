//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Env var that tells a re-executed test binary which child role to play.
pub(crate) const CHILD_ENV: &str = "THREADLET_TEST_CHILD";

/// The role this process plays, if it is a child started by [`run_child`].
pub(crate) fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Re-runs this test binary's test `test_name` with the child role `role`
/// and returns its output (it is not an error for it to crash: callers
/// inspect the status).
pub(crate) fn run_child(test_name: &str, role: &str, extra_env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("spawn child test process")
}

/// Number of open fds of this process.
pub(crate) fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Number of memory mappings of this process.
pub(crate) fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .lines()
        .count()
}

/// Resident set size of this process, in bytes.
pub(crate) fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

/// What a child started by [`run_child_watched`] did.
pub(crate) struct Watched {
    /// Its exit status; `None` if it was still running at the deadline (it
    /// was then killed: a hang).
    pub status: Option<std::process::ExitStatus>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

/// Like [`run_child`], but never waits past `timeout` (a child still running
/// then is killed and reported as hung), and whenever the child prints a line
/// on stderr that `go_when` accepts, writes one line `go` to its stdin (once).
pub(crate) fn run_child_watched(
    test_name: &str,
    role: &str,
    timeout: std::time::Duration,
    mut go_when: impl FnMut(&str) -> bool,
) -> Watched {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Instant;

    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child test process");
    let mut stdin = child.stdin.take();
    let mut out = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut stderr = String::new();
    let mut status = None;
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(20)) {
            Ok(line) => {
                if stdin.is_some() && go_when(&line) {
                    let mut s = stdin.take().unwrap();
                    let _ = s.write_all(b"go\n");
                }
                stderr.push_str(&line);
                stderr.push('\n');
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                status = child.wait().ok();
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
    }
    drop(stdin);
    Watched {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr,
    }
}

/// In a child started by [`run_child_watched`]: waits for the parent's `go`.
pub(crate) fn wait_for_go() {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
