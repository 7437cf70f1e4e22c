//! HTTP/1.1 for the `http_server` example: one connection's buffer, its
//! requests (parsed by `httparse`), the routes and their responses. No IO
//! and no runtime, so the tokio and std-thread versions in `benches/peers`
//! include this very file; [`serve_blocking`] is the connection loop for
//! blocking-style streams (threadlet fibers, std threads).
//!
//! States of a connection ([`Conn::step`] moves between them):
//! - *reading*: the buffer holds no complete request; read more.
//! - *answering*: complete requests are answered in order into `out`
//!   (pipelining: one write for all of them) until the buffer runs out, a
//!   request says `Connection: close` (then *closing*), a request is bad
//!   (an error response, then *closing*), or a request wants to sleep.
//! - *sleeping*: `/slow` asked for a pause; the caller flushes `out`,
//!   sleeps, and the next step writes that response and goes on answering.
//! - *closing*: flush `out`, close.
//!
//! Limits: a request head over [`MAX_HEAD`] bytes or [`MAX_HEADERS`] lines is
//! `431`, a body over [`MAX_BODY`] is `413` (refused from its
//! `Content-Length`, before any of it is read), anything `httparse` refuses
//! is `400`, a chunked body is `501`; each closes the connection.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Largest request head (request line and headers).
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Most header lines.
pub(crate) const MAX_HEADERS: usize = 64;
/// Largest request body.
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// Longest pause `/slow?ms=N` grants.
pub(crate) const MAX_SLOW_MS: u64 = 10_000;

const HELLO: &str = "Hello, world!\n";

/// What one request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Hello,
    Json,
    Slow(u64),
    BadQuery,
    NotFound,
    MethodNotAllowed,
}

#[derive(Debug, Clone)]
struct Request {
    route: Route,
    keep_alive: bool,
    head: bool,
}

/// What the connection loop does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Write `out` (if not empty), then read into [`Conn::spare`].
    Read,
    /// Write `out`, sleep this long, then step again.
    Sleep(Duration),
    /// Write `out`, then close.
    Close,
}

/// How long a connection may stay silent between requests, and how long one
/// request may take to arrive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Longest silence between requests (keep-alive timeout).
    pub idle: Duration,
    /// Longest time from a request's first byte to its last.
    pub request: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle: Duration::from_secs(60),
            request: Duration::from_secs(10),
        }
    }
}

/// One connection's state.
pub(crate) struct Conn {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Responses not yet written.
    pub out: Vec<u8>,
    slept: Option<Request>,
    partial_since: Option<Instant>,
}

impl Default for Conn {
    fn default() -> Self {
        Conn::new()
    }
}

enum Parsed {
    Partial,
    Complete(usize, Request),
    Reject(u16),
}

impl Conn {
    /// A connection with nothing read yet.
    pub(crate) fn new() -> Conn {
        Conn {
            buf: vec![0; 4096],
            start: 0,
            end: 0,
            out: Vec::with_capacity(4096),
            slept: None,
            partial_since: None,
        }
    }

    /// Where the next read goes; never empty while [`Conn::step`] says
    /// `Read` (the buffer grows up to a head plus a body).
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        socket::spare(
            &mut self.buf,
            &mut self.start,
            &mut self.end,
            MAX_HEAD + MAX_BODY,
        )
    }

    /// Takes note of `n` bytes read into [`Conn::spare`].
    pub(crate) fn received(&mut self, n: usize) {
        self.end += n;
    }

    /// Answers what can be answered now; see the module docs.
    pub(crate) fn step(&mut self) -> Step {
        if let Some(req) = self.slept.take() {
            respond(&req, &mut self.out);
            if !req.keep_alive {
                return Step::Close;
            }
        }
        loop {
            match parse(&self.buf[self.start..self.end]) {
                Parsed::Complete(len, req) => {
                    self.start += len;
                    self.partial_since = None;
                    if let Route::Slow(ms) = req.route {
                        self.slept = Some(req);
                        return Step::Sleep(Duration::from_millis(ms));
                    }
                    respond(&req, &mut self.out);
                    if !req.keep_alive {
                        return Step::Close;
                    }
                }
                Parsed::Reject(status) => {
                    error_response(status, &mut self.out);
                    return Step::Close;
                }
                Parsed::Partial => {
                    if self.start == self.end {
                        self.start = 0;
                        self.end = 0;
                        self.partial_since = None;
                    } else {
                        self.partial_since.get_or_insert_with(Instant::now);
                    }
                    return Step::Read;
                }
            }
        }
    }

    /// How long the next read may wait; `None` once an incomplete request
    /// has used up `limits.request`.
    pub(crate) fn read_timeout(&self, limits: &Limits) -> Option<Duration> {
        match self.partial_since {
            None => Some(limits.idle),
            Some(t) => limits
                .request
                .checked_sub(t.elapsed())
                .filter(|d| !d.is_zero())
                .map(|d| d.min(limits.idle)),
        }
    }
}

fn header<'a>(req: &'a httparse::Request<'_, '_>, name: &str) -> Option<&'a [u8]> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

fn parse(buf: &[u8]) -> Parsed {
    if buf.is_empty() {
        return Parsed::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => return Parsed::Reject(431),
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Parsed::Reject(431),
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Reject(431),
        Err(_) => return Parsed::Reject(400),
    };
    if header(&req, "transfer-encoding").is_some() {
        return Parsed::Reject(501);
    }
    let mut body = 0usize;
    for h in req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        let len = std::str::from_utf8(h.value)
            .ok()
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok());
        match len {
            Some(n) if n > MAX_BODY as u64 => return Parsed::Reject(413),
            // Two different lengths: a request smuggling attempt.
            Some(n) if body != 0 && body as u64 != n => return Parsed::Reject(400),
            Some(n) => body = n as usize,
            None => return Parsed::Reject(400),
        }
    }
    if buf.len() < head_len + body {
        return Parsed::Partial;
    }
    let connection = header(&req, "connection").map(|v| v.to_ascii_lowercase());
    let keep_alive = match req.version {
        Some(1) => connection.as_deref() != Some(b"close".as_slice()),
        _ => connection.as_deref() == Some(b"keep-alive".as_slice()),
    };
    let method = req.method.unwrap_or("");
    let head = method == "HEAD";
    let path = req.path.unwrap_or("/");
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let route = match path {
        _ if method != "GET" && !head => Route::MethodNotAllowed,
        "/" => Route::Hello,
        "/json" => Route::Json,
        "/slow" => {
            let ms = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .map_or(Some(100), |v| v.parse::<u64>().ok());
            match ms {
                Some(ms) if ms <= MAX_SLOW_MS => Route::Slow(ms),
                _ => Route::BadQuery,
            }
        }
        _ => Route::NotFound,
    };
    Parsed::Complete(
        head_len + body,
        Request {
            route,
            keep_alive,
            head,
        },
    )
}

fn response(out: &mut Vec<u8>, status: &str, ctype: &str, body: &[u8], req: &Request, extra: &str) {
    let close = if req.keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{close}{extra}\r\n",
        body.len()
    )
    .expect("writing to a Vec cannot fail");
    if !req.head {
        out.extend_from_slice(body);
    }
}

fn respond(req: &Request, out: &mut Vec<u8>) {
    const TEXT: &str = "text/plain; charset=utf-8";
    match &req.route {
        Route::Hello => response(out, "200 OK", TEXT, HELLO.as_bytes(), req, ""),
        Route::Json => {
            let body = serde_json::to_vec(&serde_json::json!({
                "message": "Hello, world!",
                "routes": ["/", "/json", "/slow?ms=N"],
            }))
            .expect("a json! value serializes");
            response(out, "200 OK", "application/json", &body, req, "");
        }
        Route::Slow(ms) => response(
            out,
            "200 OK",
            TEXT,
            format!("slept {ms} ms\n").as_bytes(),
            req,
            "",
        ),
        Route::BadQuery => {
            let msg = format!("/slow takes ?ms=N with N from 0 to {MAX_SLOW_MS}\n");
            response(out, "400 Bad Request", TEXT, msg.as_bytes(), req, "")
        }
        Route::NotFound => response(out, "404 Not Found", TEXT, b"not found\n", req, ""),
        Route::MethodNotAllowed => response(
            out,
            "405 Method Not Allowed",
            TEXT,
            b"only GET and HEAD\n",
            req,
            "Allow: GET, HEAD\r\n",
        ),
    }
}

fn error_response(status: u16, out: &mut Vec<u8>) {
    let (line, body): (&str, &[u8]) = match status {
        413 => ("413 Content Too Large", b"request body too large\n"),
        431 => (
            "431 Request Header Fields Too Large",
            b"request head too large\n",
        ),
        501 => (
            "501 Not Implemented",
            b"chunked request bodies are not supported\n",
        ),
        _ => ("400 Bad Request", b"malformed request\n"),
    };
    let req = Request {
        route: Route::NotFound,
        keep_alive: false,
        head: false,
    };
    response(out, line, "text/plain; charset=utf-8", body, &req, "");
}

#[path = "../support/socket.rs"]
mod socket;
use socket::linger;
pub(crate) use socket::Socket;

/// Serves one connection until the client closes it, sends a bad request,
/// times out, or the read side is shut down (a graceful stop); responses to
/// the requests already read are written first. `sleep` is the runtime's.
pub(crate) fn serve_blocking<S>(stream: &S, limits: Limits, sleep: fn(Duration)) -> io::Result<()>
where
    S: Socket,
    for<'a> &'a S: Read + Write,
{
    let mut conn = Conn::new();
    let mut timeout = None;
    loop {
        let step = conn.step();
        if !conn.out.is_empty() {
            (&mut &*stream).write_all(&conn.out)?;
            conn.out.clear();
        }
        match step {
            Step::Close => return linger::<S>(stream),
            Step::Sleep(d) => sleep(d),
            Step::Read => {
                let Some(want) = conn.read_timeout(&limits) else {
                    return Ok(());
                };
                if timeout != Some(want) {
                    stream.set_read_timeout(Some(want))?;
                    timeout = Some(want);
                }
                match (&mut &*stream).read(conn.spare()) {
                    Ok(0) => return Ok(()),
                    Ok(n) => conn.received(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                        ) =>
                    {
                        return Ok(())
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}
