//! Real client crates, unchanged, on fibers (RELIABILITY row 24): `ureq` with
//! its default connector, the `redis` crate's sync client, `tungstenite::
//! connect`, and a rustls client over `std::net::TcpStream`. Each runs from
//! many fibers on 2 workers against a server on the same runtime that delays
//! every answer by 100 ms. Without the syscall hooks each client call would
//! hold its worker for the whole delay — 1000 calls x 100 ms / 2 workers =
//! 50 s at best (and `tungstenite` deadlocks: both workers wait in `read` for
//! server fibers that cannot run). The bounds below are far from the parked
//! time (well under 2 s on a quiet machine) and far below what blocking could
//! achieve; the measured times are printed.
#![cfg(all(feature = "hook", target_os = "linux", target_env = "gnu"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use threadlet::net::{TcpListener, TcpStream};

const DELAY: Duration = Duration::from_millis(100);
/// Blocking would need at least 50 s for 1000 calls; parking takes ~0.1-2 s.
const BOUND: Duration = Duration::from_secs(30);

/// Runs `clients` fibers of `client(i, addr)` against a server of `handler`
/// on a fresh 2-worker runtime; returns the elapsed time of the clients.
fn run(
    what: &str,
    clients: usize,
    handler: impl Fn(TcpStream) + Send + Sync + 'static,
    client: impl Fn(usize, SocketAddr) + Send + Sync + 'static,
) -> Duration {
    let rt = threadlet::Runtime::builder().workers(2).build().unwrap();
    let elapsed = rt.block_on(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Arc::new(handler);
        // Thread-per-connection, on fibers; cancelled when the runtime drops.
        threadlet::spawn(move || {
            for stream in listener.incoming() {
                let handler = handler.clone();
                threadlet::spawn(move || handler(stream.unwrap()));
            }
        });
        let client = Arc::new(client);
        let start = Instant::now();
        let fibers: Vec<_> = (0..clients)
            .map(|i| {
                let client = client.clone();
                threadlet::spawn(move || client(i, addr))
            })
            .collect();
        for f in fibers {
            f.join().unwrap();
        }
        start.elapsed()
    });
    println!("{what}: {clients} clients in {elapsed:?}");
    assert!(
        elapsed < BOUND,
        "{what}: {clients} clients took {elapsed:?}: did a client block its worker?"
    );
    elapsed
}

#[test]
fn ureq_default_connector_1000_fibers() {
    run(
        "ureq",
        1000,
        |stream| {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            // Request line and headers, up to the blank line.
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            threadlet::thread::sleep(DELAY);
            let _ = (&stream).write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        },
        |i, addr| {
            let body = ureq::get(&format!("http://{addr}/{i}"))
                .call()
                .unwrap()
                .into_string()
                .unwrap();
            assert_eq!(body, "hello");
        },
    );
}

/// Reads one RESP command (an array of bulk strings); `None` at EOF.
fn read_command(r: &mut impl BufRead) -> Option<Vec<Vec<u8>>> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut arg = vec![0; len + 2];
        r.read_exact(&mut arg).ok()?;
        arg.truncate(len);
        args.push(arg);
    }
    Some(args)
}

#[test]
fn redis_sync_client_1000_fibers() {
    run(
        "redis",
        1000,
        |stream| {
            // A tiny RESP server: SET stores, GET answers (each after the
            // delay), anything else (CLIENT SETINFO...) is +OK.
            let mut reader = BufReader::new(&stream);
            let mut store = std::collections::HashMap::new();
            while let Some(cmd) = read_command(&mut reader) {
                let name = cmd[0].to_ascii_uppercase();
                let reply = match (&name[..], &cmd[1..]) {
                    (b"SET", [k, v]) => {
                        threadlet::thread::sleep(DELAY);
                        store.insert(k.clone(), v.clone());
                        b"+OK\r\n".to_vec()
                    }
                    (b"GET", [k]) => {
                        threadlet::thread::sleep(DELAY);
                        match store.get(k) {
                            Some(v) => {
                                [format!("${}\r\n", v.len()).as_bytes(), v, b"\r\n"].concat()
                            }
                            None => b"$-1\r\n".to_vec(),
                        }
                    }
                    (b"PING", _) => b"+PONG\r\n".to_vec(),
                    _ => b"+OK\r\n".to_vec(),
                };
                if (&stream).write_all(&reply).is_err() {
                    return;
                }
            }
        },
        |i, addr| {
            let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
            let mut con = client.get_connection().unwrap();
            let value = format!("value-{i}");
            redis::cmd("SET")
                .arg("key")
                .arg(&value)
                .query::<()>(&mut con)
                .unwrap();
            let got: String = redis::cmd("GET").arg("key").query(&mut con).unwrap();
            assert_eq!(got, value);
        },
    );
}

#[test]
fn tungstenite_connect_200_fibers_to_a_server_on_the_same_runtime() {
    run(
        "tungstenite",
        200,
        |stream| {
            let mut ws = tungstenite::accept(stream).unwrap();
            while let Ok(msg) = ws.read() {
                if msg.is_close() {
                    break;
                }
                threadlet::thread::sleep(DELAY);
                if ws.send(msg).is_err() {
                    break;
                }
            }
        },
        |i, addr| {
            let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
            let text = format!("message {i}");
            ws.send(tungstenite::Message::text(text.clone())).unwrap();
            let reply = ws.read().unwrap();
            assert_eq!(reply.into_text().unwrap().as_str(), text);
            let _ = ws.close(None);
        },
    );
}

#[test]
fn rustls_client_over_std_tcp_1000_fibers() {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap(),
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client_config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    run(
        "rustls",
        1000,
        move |stream| {
            let conn = rustls::ServerConnection::new(server_config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut line = String::new();
            if BufReader::new(&mut tls).read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            threadlet::thread::sleep(DELAY);
            let _ = tls.write_all(format!("echo {line}").as_bytes());
            tls.conn.send_close_notify();
            let _ = tls.flush();
        },
        move |i, addr| {
            let name = ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(client_config.clone(), name).unwrap();
            // The client is plain std: a std::net::TcpStream under rustls.
            let sock = std::net::TcpStream::connect(addr).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, sock);
            tls.write_all(format!("hello {i}\n").as_bytes()).unwrap();
            let mut reply = String::new();
            tls.read_to_string(&mut reply).unwrap();
            assert_eq!(reply, format!("echo hello {i}\n"));
        },
    );
}
