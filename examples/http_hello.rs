//! "Hello, world!" over HTTP/1.1 with keep-alive on threadlet: one fiber per
//! connection. `std_http_hello.rs` is the same server with one OS thread per
//! connection; the two differ only in their `use` lines and in `main`.
//! Requests are parsed with `httparse`; pipelined requests are answered in
//! order.
//!
//! Run: `cargo run --release --example http_hello -- 8080` (the port
//! defaults to the `PORT` environment variable, then 8080), then
//! `curl http://127.0.0.1:8080/` or `wrk -t2 -c256 -d10s http://127.0.0.1:8080/`.

use std::io::{self, Read, Write};
use threadlet as thread;
use threadlet::net::{TcpListener, TcpStream};

const BODY: &str = "Hello, world!";

/// Answers every complete request in `buf`; returns how many bytes were
/// consumed and whether the connection stays open.
fn respond(buf: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), httparse::Error> {
    let mut consumed = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[consumed..])? {
            httparse::Status::Partial => return Ok((consumed, true)),
            httparse::Status::Complete(len) => {
                consumed += len;
                let connection = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("connection"))
                    .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase());
                let keep_alive = match req.version {
                    Some(1) => connection.as_deref() != Some("close"),
                    _ => connection.as_deref() == Some("keep-alive"),
                };
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{BODY}",
                    BODY.len(),
                    if keep_alive { "" } else { "Connection: close\r\n" }
                )
                .expect("writing to a Vec cannot fail");
                if !keep_alive {
                    return Ok((consumed, false));
                }
            }
        }
    }
}

fn handle(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        if filled == buf.len() {
            // A request larger than the buffer: refuse it.
            stream.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        }
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        out.clear();
        match respond(&buf[..filled], &mut out) {
            Ok((consumed, keep_alive)) => {
                stream.write_all(&out)?;
                if !keep_alive {
                    return Ok(());
                }
                buf.copy_within(consumed..filled, 0);
                filled -= consumed;
            }
            Err(_) => {
                stream.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )?;
                return Ok(());
            }
        }
    }
}

fn serve() -> io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .map(|p| p.parse().expect("the port must be a number, e.g. 8080"))
        .unwrap_or(8080);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("http hello listening on http://{}/", listener.local_addr()?);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
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
