//! End to end: `examples/tls_echo` as a server, and the same binary in
//! client mode (rustls on both ends, certificate from rcgen) checking every
//! echoed line; a client that trusts another certificate is refused, and a
//! plain-TCP client sending garbage does not hurt the server.

mod example_support;

use std::io::Write;
use std::net::TcpStream;

use example_support::{closed_by_peer, run_example, Server};

fn temp_pem(tag: &str) -> String {
    let dir = std::env::temp_dir();
    dir.join(format!(
        "threadlet-tls-echo-{}-{tag}.pem",
        std::process::id()
    ))
    .to_string_lossy()
    .into_owned()
}

#[test]
fn client_mode_echoes_every_line_over_tls() {
    let pem = temp_pem("server");
    let server = Server::start("tls_echo", &["--cert-out", &pem]);
    let addr = server.addr.to_string();

    // Garbage instead of a ClientHello: that connection ends, the server lives.
    let mut raw = TcpStream::connect(server.addr).unwrap();
    let _ = raw.write_all(b"GET / HTTP/1.1\r\n\r\n\x00\xff\x16\x03");
    assert!(closed_by_peer(&mut raw), "a non-TLS client is disconnected");

    let (status, out, err) = run_example(
        "tls_echo",
        &[
            "client", &addr, "--cert", &pem, "--conns", "20", "--lines", "50",
        ],
    );
    assert!(
        status.success(),
        "client failed: {status}\nstdout: {out}\nstderr: {err}"
    );
    assert!(
        out.starts_with("ok: 20 connections x 50 lines"),
        "stdout: {out}"
    );

    // A client that trusts a different certificate refuses the server.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let wrong = temp_pem("wrong");
    std::fs::write(&wrong, other.cert.pem()).unwrap();
    let (status, out, err) = run_example(
        "tls_echo",
        &["client", &addr, "--cert", &wrong, "--conns", "1"],
    );
    assert!(
        !status.success(),
        "a client with the wrong root must fail; stdout: {out}"
    );
    assert!(
        err.contains("certificate"),
        "stderr names the certificate problem: {err}"
    );

    let _ = std::fs::remove_file(&pem);
    let _ = std::fs::remove_file(&wrong);
}
