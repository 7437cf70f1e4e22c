//! A TCP echo server on threadlet: one fiber per connection, written as
//! plain blocking code. Idle connections are closed after 60 s (a read
//! timeout), and the number of open connections is printed every 5 s.
//!
//! Run: `cargo run --release --example echo_server -- 127.0.0.1:7000`
//! (the address defaults to 127.0.0.1:7000; the `ECHO_ADDR` environment
//! variable works too), then talk to it with `nc 127.0.0.1 7000`.

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use threadlet::net::{TcpListener, TcpStream};

const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

fn serve_connection(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ECHO_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:7000".to_owned());
    threadlet::run(move || {
        let listener = TcpListener::bind(&addr)?;
        println!("echo server listening on {}", listener.local_addr()?);
        let open = Arc::new(AtomicUsize::new(0));
        let reporter = open.clone();
        threadlet::spawn(move || loop {
            threadlet::time::sleep(Duration::from_secs(5));
            println!("{} connections open", reporter.load(Ordering::Relaxed));
        });
        for stream in listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                // Out of fds (accept has already backed off) or an aborted
                // handshake: keep serving.
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            let open = open.clone();
            threadlet::spawn(move || {
                open.fetch_add(1, Ordering::Relaxed);
                let peer = stream.peer_addr();
                if let Err(e) = serve_connection(stream) {
                    if e.kind() == ErrorKind::TimedOut {
                        println!("{peer:?}: idle for {IDLE_TIMEOUT:?}, closed");
                    }
                }
                open.fetch_sub(1, Ordering::Relaxed);
            });
        }
        Ok(())
    })
}
