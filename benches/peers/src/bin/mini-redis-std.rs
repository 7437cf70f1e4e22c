//! `examples/mini_redis` on std threads (one per connection), for
//! `benches/clients.sh`: the same RESP parser, store (sharded
//! `std::sync::Mutex<HashMap>`) and connection loop, included from the
//! example.
//!
//! `mini-redis-std [ADDR]` (default 127.0.0.1:6380) prints
//! `listening on ADDR` once it accepts. No graceful stop: the benchmark
//! kills it.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::{Mutex, MutexGuard};

#[path = "../../../../examples/mini_redis/resp.rs"]
mod resp;
#[path = "../../../../examples/mini_redis/session.rs"]
mod session;
#[path = "../../../../examples/mini_redis/store.rs"]
mod store;

use session::{Limits, Socket};
use store::Store;

impl Socket for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> std::io::Result<()> {
        TcpStream::shutdown(self, std::net::Shutdown::Write)
    }
}

/// The accept loop.
fn serve(listener: TcpListener, store: Arc<Store>) {
    let limits = Limits::default();
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                let store = store.clone();
                let spawned = std::thread::Builder::new().spawn(move || {
                    let _ = s.set_nodelay(true);
                    let _ = session::serve_blocking(&s, &store, limits);
                });
                if let Err(e) = spawned {
                    eprintln!("mini-redis-std: cannot spawn a thread: {e}");
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn main() {
    threadlet_peers::raise_nofile();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6380".into());
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("mini-redis-std: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    let store = Arc::new(Store::new());
    let sweeper = store.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        sweeper.sweep(Instant::now());
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "listening on {}",
        listener.local_addr().expect("bound")
    );
    let _ = out.flush();
    drop(out);
    serve(listener, store);
}
