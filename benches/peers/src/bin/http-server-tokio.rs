//! `examples/http_server` on tokio, for `benches/clients.sh`: the same
//! request handling (`httparse`, routes, limits), included from the
//! example; only the connection loop is written with `.await`.
//!
//! `http-server-tokio [ADDR]` (default 127.0.0.1:8080) prints
//! `listening on ADDR` once it accepts. No graceful stop: the benchmark
//! kills it.

use std::io::Write;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[allow(dead_code)] // serve_blocking is for blocking streams
#[path = "../../../../examples/http_server/http.rs"]
mod http;

use http::{Conn, Limits, Step};

async fn connection(mut s: TcpStream, limits: Limits) {
    let _ = s.set_nodelay(true);
    let mut conn = Conn::new();
    loop {
        let step = conn.step();
        if !conn.out.is_empty() {
            if s.write_all(&conn.out).await.is_err() {
                return;
            }
            conn.out.clear();
        }
        match step {
            Step::Close => return,
            Step::Sleep(d) => tokio::time::sleep(d).await,
            Step::Read => {
                let Some(wait) = conn.read_timeout(&limits) else {
                    return;
                };
                match tokio::time::timeout(wait, s.read(conn.spare())).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                    Ok(Ok(n)) => conn.received(n),
                }
            }
        }
    }
}

/// The accept loop.
async fn serve(listener: TcpListener) {
    let limits = Limits::default();
    loop {
        match listener.accept().await {
            Ok((s, _)) => drop(tokio::spawn(connection(s, limits))),
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
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr).await.unwrap_or_else(|e| {
        eprintln!("http-server-tokio: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "listening on {}",
        listener.local_addr().expect("bound")
    );
    let _ = out.flush();
    drop(out);
    serve(listener).await;
}
