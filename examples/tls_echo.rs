//! A TLS line-echo server on threadlet with rustls, unchanged: rustls'
//! `StreamOwned` takes any `Read + Write`, and a threadlet `TcpStream` is
//! one, so the blocking rustls API parks the fiber instead of the thread.
//! The certificate is made at start by `rcgen` (self-signed, for
//! `localhost` and `127.0.0.1`) and written as PEM for clients to trust.
//!
//! ```text
//! cargo run --release --example tls_echo -- 127.0.0.1:8443 --cert-out /tmp/tls_echo.pem
//! cargo run --release --example tls_echo -- client 127.0.0.1:8443 --cert /tmp/tls_echo.pem
//! openssl s_client -connect 127.0.0.1:8443 -CAfile /tmp/tls_echo.pem
//! ```
//!
//! Server: `tls_echo [ADDR] [--cert-out PEM]` (ADDR defaults to
//! 127.0.0.1:8443, port 0 picks a free one; PEM defaults to
//! `$TMPDIR/tls_echo.pem`); prints `listening on ADDR` once it accepts.
//! Client: `tls_echo client ADDR [--cert PEM] [--conns N] [--lines M]` opens
//! N connections at once (default 10), sends M lines on each (default 100),
//! checks every echo, prints one `ok: …` line and exits 0, or names the
//! first mismatch and exits 1.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};
use threadlet::net::{TcpListener, TcpStream};

/// Longest line the server echoes; a longer one closes the connection.
const MAX_LINE: usize = 64 * 1024;
/// A client silent this long is disconnected.
const IDLE: Duration = Duration::from_secs(60);

fn default_pem() -> PathBuf {
    std::env::temp_dir().join("tls_echo.pem")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// A self-signed certificate for localhost, its PEM written to `pem_out`.
fn server_config(pem_out: &PathBuf) -> io::Result<Arc<ServerConfig>> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| invalid(format!("rcgen: {e}")))?;
    std::fs::write(pem_out, certified.cert.pem()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write the certificate to {}: {e}", pem_out.display()),
        )
    })?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(vec![certified.cert.der().clone()], key)
        })
        .map_err(|e| invalid(format!("rustls server config: {e}")))?;
    Ok(Arc::new(config))
}

/// Echoes lines until the client closes, goes silent or misbehaves.
fn echo(config: Arc<ServerConfig>, stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    let _ = stream.set_nodelay(true);
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = BufReader::new(StreamOwned::new(conn, stream));
    let mut line = Vec::new();
    loop {
        line.clear();
        // `take` bounds the line: a client that never sends '\n' cannot
        // make the buffer grow past MAX_LINE.
        let n = (&mut tls)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 || n > MAX_LINE {
            return Ok(());
        }
        let inner = tls.get_mut();
        inner.write_all(&line)?;
        inner.flush()?;
    }
}

fn accept_loop(listener: TcpListener, config: Arc<ServerConfig>) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let config = config.clone();
                // A handshake failure or a reset ends this connection only.
                threadlet::spawn(move || echo(config, stream));
            }
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
}

fn serve(mut args: impl Iterator<Item = String>) -> io::Result<()> {
    let mut addr = "127.0.0.1:8443".to_string();
    let mut pem = default_pem();
    let mut first = true;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cert-out" => {
                pem = args
                    .next()
                    .ok_or_else(|| invalid("--cert-out needs a file name"))?
                    .into()
            }
            _ if first && !a.starts_with('-') => addr = a,
            _ => {
                return Err(invalid(format!(
                    "unexpected argument {a:?}; usage: tls_echo [ADDR] [--cert-out PEM]"
                )))
            }
        }
        first = false;
    }
    let config = server_config(&pem)?;
    threadlet::run(move || {
        let listener = TcpListener::bind(&addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let local = listener.local_addr()?;
        eprintln!(
            "certificate for localhost and 127.0.0.1 in {}",
            pem.display()
        );
        let mut out = io::stdout().lock();
        writeln!(out, "listening on {local}")?;
        out.flush()?;
        drop(out);
        accept_loop(listener, config);
        Ok(())
    })
}

/// One client connection: `lines` round trips, each checked.
fn client_conn(config: Arc<ClientConfig>, addr: &str, id: usize, lines: usize) -> io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let _ = stream.set_nodelay(true);
    let name = ServerName::try_from("localhost").expect("a valid DNS name");
    let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut tls = BufReader::new(StreamOwned::new(conn, stream));
    let mut back = String::new();
    for i in 0..lines {
        let sent = format!("connection {id} line {i}: the quick brown fox\n");
        tls.get_mut().write_all(sent.as_bytes())?;
        tls.get_mut().flush()?;
        back.clear();
        tls.read_line(&mut back)?;
        if back != sent {
            return Err(io::Error::other(format!(
                "connection {id}: sent {sent:?}, got back {back:?}"
            )));
        }
    }
    tls.get_mut().conn.send_close_notify();
    tls.get_mut().flush()
}

fn client(mut args: impl Iterator<Item = String>) -> io::Result<()> {
    let addr = args.next().ok_or_else(|| {
        invalid("usage: tls_echo client ADDR [--cert PEM] [--conns N] [--lines M]")
    })?;
    let (mut pem, mut conns, mut lines) = (default_pem(), 10usize, 100usize);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| invalid(format!("{a} needs a value")))
        };
        match a.as_str() {
            "--cert" => pem = value()?.into(),
            "--conns" => {
                conns = value()?
                    .parse()
                    .map_err(|_| invalid("--conns takes a number"))?
            }
            "--lines" => {
                lines = value()?
                    .parse()
                    .map_err(|_| invalid("--lines takes a number"))?
            }
            _ => return Err(invalid(format!("unexpected argument {a:?}"))),
        }
    }
    let cert = CertificateDer::from_pem_file(&pem).map_err(|e| {
        invalid(format!(
            "cannot read the server certificate from {}: {e}",
            pem.display()
        ))
    })?;
    let mut roots = RootCertStore::empty();
    roots
        .add(cert)
        .map_err(|e| invalid(format!("bad certificate in {}: {e}", pem.display())))?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("rustls client config: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    let start = Instant::now();
    threadlet::run(move || {
        let handles: Vec<_> = (0..conns)
            .map(|id| {
                let (config, addr) = (config.clone(), addr.clone());
                threadlet::spawn(move || client_conn(config, &addr, id, lines))
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| io::Error::other("a client fiber panicked"))??;
        }
        Ok::<_, io::Error>(())
    })?;
    let took = start.elapsed();
    let total = conns * lines;
    println!(
        "ok: {conns} connections x {lines} lines echoed over TLS in {took:.2?} ({:.0} lines/s)",
        total as f64 / took.as_secs_f64()
    );
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let result = if args.peek().map(String::as_str) == Some("client") {
        args.next();
        client(args)
    } else {
        serve(args)
    };
    if let Err(e) = result {
        eprintln!("tls_echo: {e}");
        std::process::exit(1);
    }
}
