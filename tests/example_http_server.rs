//! End to end: `examples/http_server` as a child process over real sockets.
//! Routes, keep-alive, pipelining, the size limits (431, 413), 400 on
//! malformed requests, and the graceful stop on SIGTERM that still answers
//! a request in progress.

mod example_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use example_support::{closed_by_peer, Server, PATIENCE};

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(server: &Server) -> Client {
        let stream = TcpStream::connect(server.addr).expect("connect to http_server");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    fn send(&mut self, raw: &[u8]) {
        self.stream().write_all(raw).expect("write request");
    }

    /// Reads one response (with a Content-Length body).
    fn read(&mut self, head_request: bool) -> Response {
        let mut line = String::new();
        assert!(
            self.reader.read_line(&mut line).expect("status line") > 0,
            "closed before a response"
        );
        let status = line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).expect("header line");
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').expect("header has a colon");
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = resp
            .header("content-length")
            .expect("Content-Length")
            .parse()
            .unwrap();
        if !head_request {
            resp.body = vec![0; len];
            self.reader.read_exact(&mut resp.body).expect("body");
        }
        resp
    }

    fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.read(false)
    }
}

#[test]
fn routes_and_keep_alive() {
    let server = Server::start("http_server", &[]);
    let mut c = Client::connect(&server);
    // All on one connection: keep-alive.
    let r = c.get("/");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, world!\n"));
    let r = c.get("/json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON body");
    assert_eq!(v["message"], "Hello, world!");
    let r = c.get("/slow?ms=50");
    assert_eq!((r.status, r.text().as_str()), (200, "slept 50 ms\n"));
    assert_eq!(c.get("/slow?ms=abc").status, 400);
    assert_eq!(c.get("/slow?ms=99999999").status, 400);
    assert_eq!(c.get("/nowhere").status, 404);
    c.send(b"HEAD / HTTP/1.1\r\n\r\n");
    let r = c.read(true);
    assert_eq!((r.status, r.header("content-length")), (200, Some("14")));
    // A POST with a body: 405, the body is skipped, the connection lives.
    c.send(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    let r = c.read(false);
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    assert_eq!(c.get("/").status, 200);
    // Connection: close is honoured.
    c.send(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    let r = c.read(false);
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(closed_by_peer(c.stream()));
    // HTTP/1.0 closes unless asked to keep alive.
    let mut c = Client::connect(&server);
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(c.read(false).status, 200);
    assert!(closed_by_peer(c.stream()));
    server.stop();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = Server::start("http_server", &[]);
    let mut c = Client::connect(&server);
    let mut batch = Vec::new();
    let paths = ["/", "/json", "/slow?ms=10", "/missing", "/"];
    for _ in 0..20 {
        for p in paths {
            batch.extend_from_slice(format!("GET {p} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        }
    }
    c.send(&batch);
    for _ in 0..20 {
        for (p, want) in paths.iter().zip([200, 200, 200, 404, 200]) {
            assert_eq!(c.read(false).status, want, "response to {p}");
        }
    }
    // A request split at every byte.
    for b in b"GET /json HTTP/1.1\r\n\r\n" {
        c.send(std::slice::from_ref(b));
    }
    assert_eq!(c.read(false).status, 200);
    server.stop();
}

fn rejected(server: &Server, raw: &[u8], status: u16) {
    let mut c = Client::connect(server);
    // The server may answer and close before it has read everything.
    let _ = c.stream().write_all(raw);
    let r = c.read(false);
    assert_eq!(
        r.status,
        status,
        "for {:?}",
        String::from_utf8_lossy(&raw[..raw.len().min(60)])
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_by_peer(c.stream()));
    // A fresh client is still served.
    assert_eq!(Client::connect(server).get("/").status, 200);
}

#[test]
fn malformed_and_oversized_requests() {
    let server = Server::start("http_server", &[]);
    rejected(&server, b"GARBAGE\x00\x01\r\n\r\n", 400);
    rejected(&server, b"GET / HTTP/9.9\r\n\r\n", 400);
    rejected(&server, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400);
    rejected(
        &server,
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        400,
    );
    rejected(
        &server,
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
    );
    // A head over 8 KiB, with and without its end.
    let long = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(10_000));
    rejected(&server, long.as_bytes(), 431);
    rejected(&server, &long.as_bytes()[..9000], 431);
    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    rejected(
        &server,
        format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes(),
        431,
    );
    // A body over 1 MiB is refused from its Content-Length alone.
    rejected(
        &server,
        b"POST / HTTP/1.1\r\nContent-Length: 1099511627776\r\n\r\n",
        413,
    );
    rejected(
        &server,
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        501,
    );
    server.stop();
}

#[test]
fn sigterm_answers_the_request_in_progress_then_exits_0() {
    let server = Server::start("http_server", &[]);
    let mut c = Client::connect(&server);
    assert_eq!(c.get("/").status, 200); // the connection is registered
    c.send(b"GET /slow?ms=1000 HTTP/1.1\r\n\r\n");
    server.signal(libc::SIGTERM);
    let r = c.read(false);
    assert_eq!((r.status, r.text().as_str()), (200, "slept 1000 ms\n"));
    assert!(closed_by_peer(c.stream()), "closed after the last response");
    let (status, err) = server.wait();
    assert!(status.success(), "exit status {status}; stderr: {err}");
}
