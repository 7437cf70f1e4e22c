//! The same thread-per-connection echo server as `std_echo.rs`, running on
//! threadlet: one fiber per client. The code is unchanged; only the `use`
//! lines differ (`std::net` -> `threadlet::net`, `std::thread` ->
//! `threadlet as thread`) and `main` wraps the server in `threadlet::run`.
//!
//! Run: `cargo run --release --example threadlet_echo -- 127.0.0.1:7878`
//! (the address defaults to 127.0.0.1:7878), then `nc 127.0.0.1 7878`.

use std::io::{self, Read, Write};
use threadlet as thread;
use threadlet::net::{TcpListener, TcpStream};

fn handle(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn serve() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".to_owned());
    let listener = TcpListener::bind(&addr)?;
    println!("echo server listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || handle(stream));
            }
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
    Ok(())
}

fn main() -> io::Result<()> {
    threadlet::run(serve)
}
