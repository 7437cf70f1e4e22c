//! mini_redis: a small Redis-compatible (RESP2) key-value server on
//! threadlet, one fiber per connection, written as blocking code.
//!
//! Commands: `PING`, `ECHO`, `GET`, `SET` (with `EX`/`PX`/`NX`/`XX`/
//! `KEEPTTL`), `DEL`, `EXISTS`, `INCR`/`INCRBY`/`DECR`/`DECRBY`,
//! `EXPIRE`/`PEXPIRE`/`TTL`/`PTTL`, `MGET`/`MSET`, `DBSIZE`, `FLUSHALL`,
//! `SELECT 0`, `QUIT`, and enough of `COMMAND` and `CONFIG GET` for
//! `redis-cli` and `redis-benchmark`. Pipelined and inline commands work.
//!
//! ```text
//! cargo run --release --example mini_redis -- 127.0.0.1:6380
//! redis-cli -p 6380 set greeting hello ex 10
//! redis-benchmark -p 6380 -t ping,set,get,incr -n 200000 -c 100 -q
//! ```
//!
//! Arguments: `[ADDR] [--idle-timeout SECS] [--request-timeout SECS]`.
//! ADDR defaults to 127.0.0.1:6380 (port 0 picks a free one); once it
//! accepts it prints one line, `listening on ADDR`. SIGINT or SIGTERM stops
//! it gracefully (exit status 0).
//!
//! Files: `resp.rs` parses and encodes RESP, `store.rs` holds the keys and
//! runs the commands, `session.rs` is the connection loop; the tokio and
//! std-thread versions in `benches/peers` share all three and differ only
//! in the loop around them. The accept loop and the graceful stop are in
//! `examples/support/server.rs`.

use std::sync::Arc;
use std::time::Duration;

pub use threadlet::sync::{Mutex, MutexGuard};

mod resp;
#[path = "../support/server.rs"]
mod server;
mod session;
mod store;

use session::{Limits, Socket};
use store::Store;

impl Socket for threadlet::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        threadlet::net::TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> std::io::Result<()> {
        threadlet::net::TcpStream::shutdown(self, std::net::Shutdown::Write)
    }
}

/// How often the sweeper looks for expired keys.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

fn parse_args() -> Result<(String, Limits), String> {
    let mut addr = None;
    let mut limits = Limits::default();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut secs = |name: &str| -> Result<Duration, String> {
            let v = it
                .next()
                .ok_or(format!("{name} needs a number of seconds"))?;
            v.parse::<f64>()
                .ok()
                .filter(|s| *s > 0.0 && s.is_finite())
                .map(Duration::from_secs_f64)
                .ok_or(format!("{name} {v}: expected a positive number of seconds"))
        };
        match a.as_str() {
            "--idle-timeout" => limits.idle = secs("--idle-timeout")?,
            "--request-timeout" => limits.request = secs("--request-timeout")?,
            _ if addr.is_none() && !a.starts_with('-') => addr = Some(a),
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    Ok((addr.unwrap_or_else(|| "127.0.0.1:6380".into()), limits))
}

fn main() {
    let (addr, limits) = parse_args().unwrap_or_else(|e| {
        eprintln!("mini_redis: {e}");
        eprintln!("usage: mini_redis [ADDR] [--idle-timeout SECS] [--request-timeout SECS]");
        std::process::exit(2)
    });
    let result = threadlet::run(move || -> std::io::Result<()> {
        let signals = server::catch_stop_signals()?;
        let store = Arc::new(Store::new());
        let conns = Arc::new(server::Connections::default());

        let sweeper = {
            let store = store.clone();
            threadlet::spawn(move || loop {
                threadlet::time::sleep(SWEEP_EVERY);
                store.sweep(std::time::Instant::now());
            })
        };

        let handler = {
            let (store, conns) = (store.clone(), conns.clone());
            move |stream: threadlet::net::TcpStream| {
                let _ = stream.set_nodelay(true);
                if let Some(conn) = conns.register(stream) {
                    // An IO error ends this connection only.
                    let _ = session::serve_blocking::<threadlet::net::TcpStream>(
                        &conn.stream,
                        &store,
                        limits,
                    );
                }
            }
        };
        let listening = server::listen(&addr, handler)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        server::announce(listening.local_addr());
        server::stop_on_signal(signals, listening, &conns);
        sweeper.cancel();
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("mini_redis: {e}");
        std::process::exit(1);
    }
}
