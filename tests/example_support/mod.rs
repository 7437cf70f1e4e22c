//! Runs an example's binary as a server for the `example_*` tests.
//!
//! The binary is built with `cargo build --example NAME` into the same
//! target directory and profile as the test (cargo does nothing when it is
//! up to date; `cargo test --test example_x` alone does not build examples).
//! The server is started on `127.0.0.1:0`, and the address is read from its
//! `listening on ADDR` line. Dropping a [`Server`] kills it, so a failing
//! test leaves no process behind.

#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Loose bound for anything a loaded CI machine should still do quickly.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Builds example `name` (if needed) and returns the path of its binary.
pub(crate) fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let profile = profile_dir
        .file_name()
        .and_then(|p| p.to_str())
        .unwrap_or("debug");
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile == "release" {
        build.arg("--release");
    }
    if let Some(target) = profile_dir.parent() {
        build.env("CARGO_TARGET_DIR", target);
    }
    // cargo gives a test the variables of the package it tests; a build
    // script that watches one of them (ring's does) would rebuild, and the
    // next `cargo test` would rebuild it back. Build as from a shell.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let from_cargo = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
            "CARGO_PRIMARY_",
            "CARGO_TARGET_TMPDIR",
        ]
        .iter()
        .any(|p| key.starts_with(p));
        if from_cargo || key == "LD_LIBRARY_PATH" || key == "OUT_DIR" {
            build.env_remove(&*key);
        }
    }
    let bin = profile_dir.join("examples").join(name);
    match build.status() {
        Ok(s) if s.success() => {}
        // Offline or some other trouble: an existing binary still serves.
        other if bin.exists() => eprintln!(
            "cargo build --example {name}: {other:?}; using {}",
            bin.display()
        ),
        other => panic!("cannot build example {name}: {other:?}"),
    }
    bin
}

/// An example server running as a child process.
pub(crate) struct Server {
    child: Child,
    /// The address from its `listening on` line.
    pub addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts example `name` with `args` (the address `127.0.0.1:0` comes
    /// first) and waits for its `listening on ADDR` line.
    pub(crate) fn start(name: &str, args: &[&str]) -> Server {
        let mut child = Command::new(example_bin(name))
            .arg("127.0.0.1:0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = BufReader::new(stdout).read_line(&mut first);
            let _ = line_tx.send(first);
        });
        let mut err = child.stderr.take().expect("piped");
        let (err_tx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            let mut all = String::new();
            let _ = err.read_to_string(&mut all);
            let _ = err_tx.send(all);
        });
        let line = line_rx.recv_timeout(PATIENCE).unwrap_or_default();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                let err = stderr.recv_timeout(PATIENCE).unwrap_or_default();
                panic!("{name} printed {line:?} instead of 'listening on ADDR'; stderr: {err}")
            });
        Server {
            child,
            addr,
            stderr,
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to the server.
    pub(crate) fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with a pid of our own child and a valid signal
        // number touches no memory of this process.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// Waits (at most [`PATIENCE`]) for the server to exit; returns its
    /// status and everything it wrote to stderr.
    pub(crate) fn wait(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let err = self.stderr.recv_timeout(PATIENCE).unwrap_or_default();
                return (status, err);
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then checks that the server exits with status 0 (graceful
    /// stop); returns its stderr.
    pub(crate) fn stop(self) -> String {
        self.signal(libc::SIGTERM);
        let (status, err) = self.wait();
        assert!(
            status.success(),
            "exit status {status} after SIGTERM; stderr: {err}"
        );
        err
    }

    /// The server's resident set size in KiB (from /proc).
    pub(crate) fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The server's peak resident set size in KiB (from /proc).
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} line in /proc/PID/status"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the peer has closed `stream` (EOF or reset) within [`PATIENCE`],
/// discarding whatever it still sends.
pub(crate) fn closed_by_peer(stream: &mut std::net::TcpStream) -> bool {
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("set_read_timeout");
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Runs example `name` with `args` to completion (at most [`PATIENCE`],
/// then it is killed and the test fails); returns its status, stdout and
/// stderr.
pub(crate) fn run_example(name: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(example_bin(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
    let (mut out, mut err) = (
        child.stdout.take().expect("piped"),
        child.stderr.take().expect("piped"),
    );
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?} did not finish within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}
