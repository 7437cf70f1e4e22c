//! RELIABILITY row 6: accepting under EMFILE neither spins nor stops
//! serving, for a plain accept loop and for `net::serve`. Each test re-runs
//! the test binary as a child with `RLIMIT_NOFILE = 64` that serves an echo
//! server on threadlet — a naive `incoming()` loop that ignores accept
//! errors, or `net::serve` (whose listening socket is level-triggered in
//! every worker's poller, so without the back-off a full backlog would make
//! every poll return at once). The parent opens 200 connections: the child
//! runs out of fds, its CPU stays low while accepting backs off, the
//! connections it accepted still echo, and once the parent closes most of
//! them the queued ones are accepted and echo too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "THREADLET_EMFILE_CHILD";
const CLIENTS: usize = 200;

fn limit_fds() {
    let limit = libc::rlimit {
        rlim_cur: 64,
        rlim_max: 64,
    };
    // SAFETY: sets this (child) process's fd limit from a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

fn echo_conn(mut conn: threadlet::net::TcpStream) {
    let mut buf = [0u8; 256];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// The naive accept loop: ignores every accept error.
fn accept_loop_child() {
    limit_fds();
    threadlet::run(|| {
        let listener = threadlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        let mut errors = 0u64;
        for conn in listener.incoming() {
            match conn {
                Ok(conn) => {
                    threadlet::spawn(move || echo_conn(conn));
                }
                Err(e) => {
                    errors += 1;
                    if errors == 1 {
                        println!("ACCEPT_ERROR {e}");
                    }
                }
            }
        }
    });
}

/// `net::serve`, which reports accept errors through `log` only.
fn serve_child() {
    limit_fds();
    threadlet::run(|| {
        let server = threadlet::net::serve("127.0.0.1:0", echo_conn).unwrap();
        println!("PORT {}", server.local_addr().port());
        // Serve until the parent kills this process.
        loop {
            threadlet::time::sleep(Duration::from_secs(3600));
        }
    });
}

/// utime + stime of process `pid`, from /proc.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

fn echo(conn: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    conn.write_all(msg)?;
    let mut back = vec![0u8; msg.len()];
    conn.read_exact(&mut back)?;
    Ok(back)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn accept_under_emfile_backs_off_keeps_serving_and_recovers() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return accept_loop_child();
    }
    drive(
        "accept_under_emfile_backs_off_keeps_serving_and_recovers",
        true,
    );
}

#[test]
fn serve_under_emfile_backs_off_keeps_serving_and_recovers() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return serve_child();
    }
    drive(
        "serve_under_emfile_backs_off_keeps_serving_and_recovers",
        false,
    );
}

/// The parent's side: runs `test_name` as the child, fills its fd table and
/// checks CPU, old connections and recovery. `reports_error`: the child
/// prints its first accept error (the naive loop sees it; `serve` logs it).
fn drive(test_name: &str, reports_error: bool) {
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait_for = |prefix: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("child never printed {prefix}"));
            // libtest may have printed "test <name> ... " on the same line.
            if let Some(at) = line.find(prefix) {
                return line[at + prefix.len()..].trim().to_owned();
            }
        }
    };
    let port: u16 = wait_for("PORT ").parse().unwrap();

    let mut conns: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            c
        })
        .collect();
    if reports_error {
        let error = wait_for("ACCEPT_ERROR ");
        assert!(
            error.contains("Too many open files"),
            "unexpected accept error: {error}"
        );
    }

    // Low CPU while accepting keeps hitting EMFILE (the child has 64 fds for
    // 200 connections).
    let (cpu0, t0) = (cpu_of(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let (cpu, wall) = (cpu_of(pid) - cpu0, t0.elapsed());
    assert!(
        cpu < wall / 2,
        "child used {cpu:?} of CPU in {wall:?} under EMFILE: accepting spins"
    );

    // The connections accepted first still echo.
    for (i, conn) in conns.iter_mut().take(10).enumerate() {
        let msg = format!("old {i}");
        assert_eq!(echo(conn, msg.as_bytes()).unwrap(), msg.as_bytes());
    }

    // Free fds: close all but the last 20; those get accepted and echo.
    let survivors = conns.split_off(CLIENTS - 20);
    drop(conns);
    for (i, mut conn) in survivors.into_iter().enumerate() {
        let msg = format!("late {i}");
        let back = echo(&mut conn, msg.as_bytes())
            .unwrap_or_else(|e| panic!("connection {i} never served: {e}"));
        assert_eq!(back, msg.as_bytes());
    }
}
