//! End to end: `examples/mini_redis` as a child process, spoken to over real
//! sockets with a tiny RESP client. Every command, pipelining, inline
//! commands, expiry (lazy and by the sweeper), each kind of bad input (after
//! which the server must still answer a fresh client), and the graceful
//! stop on SIGTERM (exit status 0).

mod example_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use example_support::{closed_by_peer, Server, PATIENCE};

/// One RESP reply, as the test compares it.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

use Reply::*;

fn bulk(s: &str) -> Reply {
    Bulk(Some(s.as_bytes().to_vec()))
}

fn ok() -> Reply {
    Simple("OK".into())
}

struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(server: &Server) -> Client {
        let stream = TcpStream::connect(server.addr).expect("connect to mini_redis");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream().write_all(bytes).expect("write to mini_redis");
    }

    fn send(&mut self, args: &[&str]) {
        self.send_raw(&encode(args));
    }

    fn read(&mut self) -> Reply {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read a reply");
        assert!(n > 0, "connection closed while waiting for a reply");
        let line = line
            .strip_suffix("\r\n")
            .expect("a reply line ends in CRLF");
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Simple(rest.into()),
            "-" => Error(rest.into()),
            ":" => Int(rest.parse().expect("integer reply")),
            "$" => {
                let len: i64 = rest.parse().expect("bulk length");
                if len < 0 {
                    return Bulk(None);
                }
                let mut data = vec![0; len as usize + 2];
                self.reader.read_exact(&mut data).expect("bulk data");
                data.truncate(len as usize);
                Bulk(Some(data))
            }
            "*" => {
                let n: usize = rest.parse().expect("array length");
                Array((0..n).map(|_| self.read()).collect())
            }
            other => panic!("not a RESP reply: {other}{rest}"),
        }
    }

    fn cmd(&mut self, args: &[&str]) -> Reply {
        self.send(args);
        self.read()
    }
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

fn is_error(r: &Reply, starts: &str) -> bool {
    matches!(r, Error(e) if e.starts_with(starts))
}

/// Polls `f` until it is true, for at most [`PATIENCE`].
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh client still gets answers.
fn assert_alive(server: &Server) {
    let mut c = Client::connect(server);
    assert_eq!(c.cmd(&["PING"]), Simple("PONG".into()));
}

#[test]
fn commands() {
    let server = Server::start("mini_redis", &[]);
    let mut c = Client::connect(&server);
    assert_eq!(c.cmd(&["PING"]), Simple("PONG".into()));
    assert_eq!(c.cmd(&["ping", "hi"]), bulk("hi"));
    assert_eq!(c.cmd(&["ECHO", "a b\r\nc"]), bulk("a b\r\nc"));

    assert_eq!(c.cmd(&["GET", "k"]), Bulk(None));
    assert_eq!(c.cmd(&["SET", "k", "v1"]), ok());
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v1"));
    assert_eq!(c.cmd(&["SET", "k", "v2", "NX"]), Bulk(None));
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v1"));
    assert_eq!(c.cmd(&["SET", "k", "v2", "XX"]), ok());
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v2"));
    assert_eq!(c.cmd(&["SET", "nope", "v", "XX"]), Bulk(None));
    assert_eq!(c.cmd(&["EXISTS", "nope"]), Int(0));
    assert_eq!(c.cmd(&["SET", "new", "v", "nx"]), ok());
    assert!(is_error(
        &c.cmd(&["SET", "k", "v", "NX", "XX"]),
        "ERR syntax error"
    ));
    assert!(is_error(
        &c.cmd(&["SET", "k", "v", "EX", "0"]),
        "ERR invalid expire time"
    ));
    assert!(is_error(
        &c.cmd(&["SET", "k", "v", "EX", "x"]),
        "ERR value is not an integer"
    ));
    assert!(is_error(
        &c.cmd(&["SET", "k", "v", "BOGUS"]),
        "ERR syntax error"
    ));

    assert_eq!(c.cmd(&["EXISTS", "k", "new", "k", "missing"]), Int(3));
    assert_eq!(c.cmd(&["DEL", "new", "missing"]), Int(1));
    assert_eq!(c.cmd(&["EXISTS", "new"]), Int(0));

    assert_eq!(c.cmd(&["INCR", "n"]), Int(1));
    assert_eq!(c.cmd(&["INCRBY", "n", "41"]), Int(42));
    assert_eq!(c.cmd(&["INCRBY", "n", "-50"]), Int(-8));
    assert_eq!(c.cmd(&["DECR", "n"]), Int(-9));
    assert_eq!(c.cmd(&["GET", "n"]), bulk("-9"));
    assert!(is_error(
        &c.cmd(&["INCR", "k"]),
        "ERR value is not an integer"
    ));
    assert_eq!(c.cmd(&["SET", "big", "9223372036854775807"]), ok());
    assert!(is_error(
        &c.cmd(&["INCR", "big"]),
        "ERR increment or decrement would overflow"
    ));

    assert_eq!(c.cmd(&["TTL", "k"]), Int(-1));
    assert_eq!(c.cmd(&["TTL", "missing"]), Int(-2));
    assert_eq!(c.cmd(&["EXPIRE", "missing", "100"]), Int(0));
    assert_eq!(c.cmd(&["EXPIRE", "k", "100"]), Int(1));
    match c.cmd(&["TTL", "k"]) {
        Int(t) => assert!((90..=100).contains(&t), "TTL after EXPIRE 100: {t}"),
        other => panic!("TTL: {other:?}"),
    }
    assert_eq!(c.cmd(&["SET", "k", "v3", "EX", "1000"]), ok());
    match c.cmd(&["PTTL", "k"]) {
        Int(t) => assert!(
            (900_000..=1_000_000).contains(&t),
            "PTTL after EX 1000: {t}"
        ),
        other => panic!("PTTL: {other:?}"),
    }
    assert_eq!(c.cmd(&["SET", "k", "v4", "KEEPTTL"]), ok());
    assert!(matches!(c.cmd(&["TTL", "k"]), Int(t) if t > 0));
    assert_eq!(c.cmd(&["SET", "k", "v5"]), ok());
    assert_eq!(c.cmd(&["TTL", "k"]), Int(-1), "a plain SET clears the TTL");

    assert_eq!(c.cmd(&["MSET", "a", "1", "b", "2"]), ok());
    assert_eq!(
        c.cmd(&["MGET", "a", "missing", "b"]),
        Array(vec![bulk("1"), Bulk(None), bulk("2")])
    );
    assert!(is_error(
        &c.cmd(&["MSET", "a"]),
        "ERR wrong number of arguments"
    ));
    assert!(is_error(
        &c.cmd(&["GET"]),
        "ERR wrong number of arguments for 'get'"
    ));

    // k, n, big, a, b
    assert_eq!(c.cmd(&["DBSIZE"]), Int(5));
    assert_eq!(c.cmd(&["FLUSHALL"]), ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Int(0));
    assert_eq!(c.cmd(&["GET", "a"]), Bulk(None));

    assert_eq!(c.cmd(&["COMMAND", "DOCS"]), Array(vec![]));
    assert!(is_error(
        &c.cmd(&["NOSUCH", "x"]),
        "ERR unknown command 'NOSUCH'"
    ));
    assert_eq!(c.cmd(&["QUIT"]), ok());
    assert!(closed_by_peer(c.stream()), "QUIT closes the connection");
    server.stop();
}

#[test]
fn pipelining_and_inline_commands() {
    let server = Server::start("mini_redis", &[]);
    let mut c = Client::connect(&server);
    // 1000 commands in one write; the replies come back in order.
    let mut batch = Vec::new();
    for i in 0..500 {
        batch.extend(encode(&["SET", &format!("key{i}"), &i.to_string()]));
        batch.extend(encode(&["INCR", &format!("key{i}")]));
    }
    c.send_raw(&batch);
    for i in 0..500 {
        assert_eq!(c.read(), ok());
        assert_eq!(c.read(), Int(i + 1));
    }
    // A command split across writes at every byte boundary.
    let get = encode(&["GET", "key7"]);
    for b in &get {
        c.send_raw(std::slice::from_ref(b));
    }
    assert_eq!(c.read(), bulk("8"));

    // Inline commands, as typed into telnet, mixed with RESP.
    c.send_raw(b"PING\r\nSET  inline   yes\r\n\r\nGET inline\n");
    c.send(&["ECHO", "after"]);
    assert_eq!(c.read(), Simple("PONG".into()));
    assert_eq!(c.read(), ok());
    assert_eq!(c.read(), bulk("yes"));
    assert_eq!(c.read(), bulk("after"));
    server.stop();
}

#[test]
fn keys_expire() {
    let server = Server::start("mini_redis", &[]);
    let mut c = Client::connect(&server);
    // Lazy: a read after the deadline finds nothing.
    assert_eq!(c.cmd(&["SET", "short", "v", "PX", "100"]), ok());
    assert_eq!(c.cmd(&["SET", "long", "v", "EX", "1000"]), ok());
    eventually("GET of a PX 100 key returns nil", || {
        c.cmd(&["GET", "short"]) == Bulk(None)
    });
    assert_eq!(c.cmd(&["TTL", "short"]), Int(-2));
    assert_eq!(c.cmd(&["GET", "long"]), bulk("v"));
    // Swept: keys nobody reads leave DBSIZE (which counts unswept keys).
    for i in 0..200 {
        c.send(&["SET", &format!("t{i}"), "v", "PX", "50"]);
    }
    c.send(&["PEXPIRE", "long", "50"]);
    for _ in 0..200 {
        assert_eq!(c.read(), ok());
    }
    assert_eq!(c.read(), Int(1));
    eventually("the sweeper removes 201 expired keys", || {
        c.cmd(&["DBSIZE"]) == Int(0)
    });
    server.stop();
}

/// Sends `bytes`, expects an error reply starting with `err` and the
/// connection closed.
fn rejected(server: &Server, bytes: &[u8], err: &str) {
    let mut c = Client::connect(server);
    c.send_raw(bytes);
    let reply = c.read();
    assert!(
        is_error(&reply, err),
        "{:?}: expected -{err}…, got {reply:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
    );
    assert!(
        closed_by_peer(c.stream()),
        "connection closed after a protocol error"
    );
    assert_alive(server);
}

#[test]
fn bad_input_is_rejected_and_the_server_survives() {
    let server = Server::start("mini_redis", &[]);
    let rss_before = server.rss_kib();
    rejected(
        &server,
        b"*abc\r\n",
        "ERR Protocol error: invalid multibulk length",
    );
    rejected(
        &server,
        b"*2\r\n$3\r\nGET\r\n:1\r\n",
        "ERR Protocol error: expected '$'",
    );
    rejected(
        &server,
        b"*1\r\n$4\r\nPINGxx",
        "ERR Protocol error: expected CRLF",
    );
    rejected(
        &server,
        b"*1\r\n$-5\r\n",
        "ERR Protocol error: invalid bulk length",
    );
    // 2^40 bytes announced: refused from the header, nothing allocated.
    rejected(
        &server,
        b"*1\r\n$1099511627776\r\n",
        "ERR Protocol error: invalid bulk length",
    );
    rejected(
        &server,
        b"*1099511627776\r\n",
        "ERR Protocol error: invalid multibulk length",
    );
    rejected(
        &server,
        b"*1\r\n$99999999999999999999999\r\n",
        "ERR Protocol error: invalid bulk length",
    );
    // A line that never ends.
    rejected(
        &server,
        &vec![b'a'; 100 * 1024],
        "ERR Protocol error: too big inline request",
    );
    rejected(
        &server,
        &[b"*1\r\n$".as_slice(), &vec![b'7'; 100 * 1024]].concat(),
        "ERR Protocol error",
    );
    // A command larger than the request limit, announced in small bulks.
    let mut huge = b"*100000\r\n".to_vec();
    for _ in 0..3000 {
        huge.extend_from_slice(format!("${}\r\n", 4096).as_bytes());
        huge.extend_from_slice(&[b'x'; 4096]);
        huge.extend_from_slice(b"\r\n");
    }
    rejected(&server, &huge, "ERR Protocol error: request too large");

    // Binary garbage: whatever the replies, the server lives on.
    let mut c = Client::connect(&server);
    let mut x: u32 = 12345;
    let garbage: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    // The server may close early (a protocol error): then the rest of the
    // write fails, which is fine.
    let _ = c.stream().write_all(&garbage);
    let _ = c.stream().shutdown(std::net::Shutdown::Write);
    assert!(
        closed_by_peer(c.stream()),
        "the server closes a garbage connection"
    );
    assert_alive(&server);

    let rss_after = server.rss_kib();
    assert!(
        rss_after < rss_before + 256 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    server.stop();
}

#[test]
fn large_replies_are_streamed_not_buffered() {
    let server = Server::start("mini_redis", &[]);
    let mut c = Client::connect(&server);
    let value = "v".repeat(128 * 1024);
    assert_eq!(c.cmd(&["SET", "big", &value]), ok());
    let peak_before = server.peak_rss_kib();
    // 44 KiB of requests asking for 256 MiB of replies: the server writes
    // them as it goes instead of buffering them all.
    let get = encode(&["GET", "big"]);
    c.send_raw(&get.repeat(2048));
    for i in 0..2048 {
        match c.read() {
            Bulk(Some(v)) => assert_eq!(v.len(), value.len(), "reply {i}"),
            other => panic!("reply {i}: {other:?}"),
        }
    }
    let grown = server.peak_rss_kib() - peak_before;
    assert!(
        grown < 64 * 1024,
        "peak RSS grew by {grown} KiB for 256 MiB of pipelined replies"
    );
    // One command's reply is capped: 32 x 1 MiB through MGET is refused.
    assert_eq!(c.cmd(&["SET", "mib", &"m".repeat(1024 * 1024)]), ok());
    let mut mget = vec!["MGET"];
    mget.extend(std::iter::repeat_n("mib", 32));
    assert!(is_error(&c.cmd(&mget), "ERR reply too large"));
    assert_eq!(
        c.cmd(&["MGET", "mib", "big"]),
        Array(vec![bulk(&"m".repeat(1024 * 1024)), bulk(&value)])
    );
    server.stop();
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    let server = Server::start(
        "mini_redis",
        &["--request-timeout", "1", "--idle-timeout", "3"],
    );
    // One byte at a time, never finishing the command: closed once the
    // command has taken longer than the request timeout.
    let mut slow = Client::connect(&server);
    slow.stream()
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let mut prefix = b"*2\r\n$4\r\nECHO\r\n$100000\r\n"
        .iter()
        .copied()
        .chain(std::iter::repeat(b'a'));
    let deadline = Instant::now() + PATIENCE;
    let mut buf = [0u8; 64];
    let closed = loop {
        assert!(
            Instant::now() < deadline,
            "a slow client was not cut off within {PATIENCE:?}"
        );
        if slow.stream().write_all(&[prefix.next().unwrap()]).is_err() {
            break true;
        }
        // The read timeout paces the client: about four bytes a second.
        match slow.stream().read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => panic!("unexpected reply to an incomplete command: {:?}", &buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => {}
        }
    };
    assert!(closed);

    // Silent: closed after the idle timeout.
    let mut idle = Client::connect(&server);
    assert_eq!(idle.cmd(&["PING"]), Simple("PONG".into()));
    assert!(
        closed_by_peer(idle.stream()),
        "an idle connection is closed"
    );
    assert_alive(&server);
    server.stop();
}

#[test]
fn sigterm_finishes_in_flight_commands_then_exits_0() {
    let server = Server::start("mini_redis", &[]);
    let mut c = Client::connect(&server);
    assert_eq!(c.cmd(&["PING"]), Simple("PONG".into()));
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend(encode(&["INCR", "counter"]));
        let _ = i;
    }
    c.send_raw(&batch);
    server.signal(libc::SIGTERM);
    // Every command sent before the signal is answered, then the
    // connection closes.
    for i in 0..2000 {
        assert_eq!(c.read(), Int(i + 1));
    }
    assert!(closed_by_peer(c.stream()));
    let (status, err) = server.wait();
    assert!(status.success(), "exit status {status}; stderr: {err}");
    assert!(err.contains("SIGTERM"), "stderr: {err}");
}

#[test]
fn sigint_stops_an_idle_server() {
    let server = Server::start("mini_redis", &[]);
    assert_alive(&server);
    let addr = server.addr;
    server.signal(libc::SIGINT);
    let (status, _) = server.wait();
    assert!(status.success(), "exit status {status} after SIGINT");
    assert!(
        TcpStream::connect(addr).is_err(),
        "the port is closed after the stop"
    );
}
