//! A thread-per-connection echo server written for `std`: one OS thread per
//! client. Compare with `threadlet_echo.rs`: the two files differ only in
//! their `use` lines and in `main` wrapping the server in `threadlet::run`.
//!
//! Run: `cargo run --release --example std_echo -- 127.0.0.1:7878`
//! (the address defaults to 127.0.0.1:7878), then `nc 127.0.0.1 7878`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

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
    serve()
}
