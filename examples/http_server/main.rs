//! An HTTP/1.1 server on threadlet: keep-alive, pipelining, request size
//! limits, a few routes, graceful stop. One fiber per connection, written as
//! blocking code; requests are parsed by `httparse`.
//!
//! Routes: `/` a static text body, `/json` a JSON body made by `serde_json`,
//! `/slow?ms=N` answers after sleeping N ms (a fiber sleep: the worker
//! serves other connections meanwhile). Other paths are `404`, other
//! methods `405`; malformed requests `400`, a head over 8 KiB `431`, a body
//! over 1 MiB `413` (see `http.rs`).
//!
//! ```text
//! cargo run --release --example http_server -- 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/json
//! wrk -t2 -c256 -d10s http://127.0.0.1:8080/
//! ```
//!
//! The first argument is the listen address (default 127.0.0.1:8080; port 0
//! picks a free one); once it accepts it prints `listening on ADDR`. SIGINT
//! or SIGTERM stops it gracefully: no new connections, requests already
//! read are answered (a sleeping `/slow` too), exit status 0.
//! `examples/http_hello.rs` is the minimal version of this server.

use std::sync::Arc;
use std::time::Duration;

mod http;
#[path = "../support/server.rs"]
mod server;

use http::{Limits, Socket};

impl Socket for threadlet::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        threadlet::net::TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> std::io::Result<()> {
        threadlet::net::TcpStream::shutdown(self, std::net::Shutdown::Write)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    if let Some(extra) = args.next() {
        eprintln!("http_server: unexpected argument {extra:?}\nusage: http_server [ADDR]");
        std::process::exit(2);
    }
    let result = threadlet::run(move || -> std::io::Result<()> {
        let signals = server::catch_stop_signals()?;
        let conns = Arc::new(server::Connections::default());
        let handler = {
            let conns = conns.clone();
            move |stream: threadlet::net::TcpStream| {
                let _ = stream.set_nodelay(true);
                if let Some(conn) = conns.register(stream) {
                    // An IO error ends this connection only.
                    let _ = http::serve_blocking::<threadlet::net::TcpStream>(
                        &conn.stream,
                        Limits::default(),
                        threadlet::time::sleep,
                    );
                }
            }
        };
        let listening = server::listen(&addr, handler)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        server::announce(listening.local_addr());
        server::stop_on_signal(signals, listening, &conns);
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("http_server: {e}");
        std::process::exit(1);
    }
}
