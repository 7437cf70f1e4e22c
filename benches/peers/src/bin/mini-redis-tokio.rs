//! `examples/mini_redis` on tokio, for `benches/clients.sh`: the same RESP
//! parser, store (sharded `std::sync::Mutex<HashMap>`, as tokio's docs
//! advise for short critical sections) and session code, included from the
//! example; only the connection loop is written with `.await`.
//!
//! `mini-redis-tokio [ADDR]` (default 127.0.0.1:6380) prints
//! `listening on ADDR` once it accepts. No graceful stop: the benchmark
//! kills it.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use std::sync::{Mutex, MutexGuard};

#[path = "../../../../examples/mini_redis/resp.rs"]
mod resp;
#[allow(dead_code)] // serve_blocking is for blocking streams
#[path = "../../../../examples/mini_redis/session.rs"]
mod session;
#[path = "../../../../examples/mini_redis/store.rs"]
mod store;

use session::{Limits, Session};
use store::{Flow, Store};

async fn connection(mut s: TcpStream, store: Arc<Store>, limits: Limits) {
    let _ = s.set_nodelay(true);
    let mut session = Session::new();
    loop {
        let Some(wait) = session.read_timeout(&limits) else {
            return;
        };
        let n = match tokio::time::timeout(wait, s.read(session.spare())).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => n,
        };
        let mut flow = session.received(n, &store);
        loop {
            if !session.out.is_empty() {
                if s.write_all(&session.out).await.is_err() {
                    return;
                }
                session.out.clear();
            }
            if flow == Flow::Close {
                return;
            }
            if !session.more {
                break;
            }
            flow = session.received(0, &store);
        }
    }
}

/// The accept loop.
async fn serve(listener: TcpListener, store: Arc<Store>) {
    let limits = Limits::default();
    loop {
        match listener.accept().await {
            Ok((s, _)) => drop(tokio::spawn(connection(s, store.clone(), limits))),
            // EMFILE and friends: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

#[tokio::main]
async fn main() {
    threadlet_peers::raise_nofile();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6380".into());
    let listener = TcpListener::bind(&addr).await.unwrap_or_else(|e| {
        eprintln!("mini-redis-tokio: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    let store = Arc::new(Store::new());
    let sweeper = store.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            sweeper.sweep(Instant::now());
        }
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "listening on {}",
        listener.local_addr().expect("bound")
    );
    let _ = out.flush();
    drop(out);
    serve(listener, store).await;
}
