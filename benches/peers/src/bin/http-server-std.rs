//! `examples/http_server` on std threads (one per connection), for
//! `benches/clients.sh`: the same request handling and connection loop,
//! included from the example.
//!
//! `http-server-std [ADDR]` (default 127.0.0.1:8080) prints
//! `listening on ADDR` once it accepts. No graceful stop: the benchmark
//! kills it.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

#[path = "../../../../examples/http_server/http.rs"]
mod http;

use http::{Limits, Socket};

impl Socket for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> std::io::Result<()> {
        TcpStream::shutdown(self, std::net::Shutdown::Write)
    }
}

/// The accept loop.
fn serve(listener: TcpListener) {
    let limits = Limits::default();
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                let spawned = std::thread::Builder::new().spawn(move || {
                    let _ = s.set_nodelay(true);
                    let _ = http::serve_blocking(&s, limits, std::thread::sleep);
                });
                if let Err(e) = spawned {
                    eprintln!("http-server-std: cannot spawn a thread: {e}");
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
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("http-server-std: cannot listen on {addr}: {e}");
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
    serve(listener);
}
