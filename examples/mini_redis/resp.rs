//! RESP2 requests in, RESP2 replies out: no IO and no runtime, so the
//! threadlet example and its tokio and std-thread twins in `benches/peers`
//! include this very file.
//!
//! A request is either a multibulk (`*<n>\r\n` then `n` times
//! `$<len>\r\n<bytes>\r\n`, what every client library sends) or an inline
//! command (one line of words, what a person types into `telnet`). The parser
//! looks at the start of a buffer and answers "a whole command of this many
//! bytes, whose arguments are these ranges", "not all here yet" or "this is
//! not RESP" — it never allocates for a length the client merely announced,
//! so `$1099511627776` costs nothing but the error reply.
//!
//! Limits (the memory one connection can make the server hold):
//! - an inline line or a `*`/`$` header line: [`MAX_INLINE`] bytes;
//! - arguments per command: [`MAX_ARGS`];
//! - one bulk argument: [`MAX_BULK`] bytes;
//! - one whole command, as buffered: [`MAX_REQUEST`] bytes (checked by the
//!   session, which owns the buffer);
//! - the reply to one command: [`MAX_REPLY`] bytes (`MGET` of many large
//!   values gets an error instead), and the replies buffered before they
//!   are written: about [`OUT_BATCH`] bytes (the session stops running
//!   pipelined commands until those are written), so a small pipeline of
//!   `GET`s of a large value cannot make the server buffer gigabytes.

use std::fmt;
use std::ops::Range;

/// Longest inline command or header line.
pub(crate) const MAX_INLINE: usize = 64 * 1024;
/// Most arguments in one command.
pub(crate) const MAX_ARGS: usize = 1024 * 1024;
/// Largest bulk argument.
pub(crate) const MAX_BULK: usize = 4 * 1024 * 1024;
/// Largest whole command.
pub(crate) const MAX_REQUEST: usize = 8 * 1024 * 1024;
/// Largest reply to one command.
pub(crate) const MAX_REPLY: usize = 16 * 1024 * 1024;
/// Replies buffered before the session has them written.
pub(crate) const OUT_BATCH: usize = 1024 * 1024;

/// Input that is not RESP; the connection answers `-ERR Protocol error: …`
/// and closes, as Redis does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProtocolError(pub &'static str);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protocol error: {}", self.0)
    }
}

/// Parses the command at the start of `buf`. On `Ok(Some(n))` the command
/// took `n` bytes and `args` holds its arguments as ranges of `buf` (an
/// empty `args` is an empty line, to be skipped). `Ok(None)`: incomplete,
/// read more.
pub(crate) fn parse_command(
    buf: &[u8],
    args: &mut Vec<Range<usize>>,
) -> Result<Option<usize>, ProtocolError> {
    args.clear();
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, args),
        Some(_) => parse_inline(buf, args),
    }
}

/// The line starting at `from`: `Ok(Some((end of its text, start of the next
/// line)))`, `Ok(None)` if its `\r\n` has not arrived.
fn line(
    buf: &[u8],
    from: usize,
    what: &'static str,
) -> Result<Option<(usize, usize)>, ProtocolError> {
    let window = &buf[from..buf.len().min(from + MAX_INLINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && window[i - 1] == b'\r' => Ok(Some((from + i - 1, from + i + 1))),
        Some(_) => Err(ProtocolError(what)),
        None if window.len() == MAX_INLINE => Err(ProtocolError(what)),
        None => Ok(None),
    }
}

fn parse_multibulk(
    buf: &[u8],
    args: &mut Vec<Range<usize>>,
) -> Result<Option<usize>, ProtocolError> {
    const BAD_COUNT: &str = "invalid multibulk length";
    let Some((end, mut pos)) = line(buf, 1, BAD_COUNT)? else {
        return Ok(None);
    };
    let count = parse_i64(&buf[1..end]).ok_or(ProtocolError(BAD_COUNT))?;
    if count > MAX_ARGS as i64 {
        return Err(ProtocolError(BAD_COUNT));
    }
    for _ in 0..count.max(0) {
        match buf.get(pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err(ProtocolError("expected '$' before a bulk argument")),
        }
        const BAD_LEN: &str = "invalid bulk length";
        let Some((end, data)) = line(buf, pos + 1, BAD_LEN)? else {
            return Ok(None);
        };
        let len = parse_i64(&buf[pos + 1..end]).ok_or(ProtocolError(BAD_LEN))?;
        if !(0..=MAX_BULK as i64).contains(&len) {
            return Err(ProtocolError(BAD_LEN));
        }
        let stop = data + len as usize;
        if buf.len() < stop + 2 {
            return Ok(None);
        }
        if &buf[stop..stop + 2] != b"\r\n" {
            return Err(ProtocolError("expected CRLF after a bulk argument"));
        }
        args.push(data..stop);
        pos = stop + 2;
    }
    Ok(Some(pos))
}

fn parse_inline(buf: &[u8], args: &mut Vec<Range<usize>>) -> Result<Option<usize>, ProtocolError> {
    let window = &buf[..buf.len().min(MAX_INLINE)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        if window.len() == MAX_INLINE {
            return Err(ProtocolError("too big inline request"));
        }
        return Ok(None);
    };
    let text = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let mut i = 0;
    while i < text {
        if buf[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < text && !buf[i].is_ascii_whitespace() {
            i += 1;
        }
        if args.len() == MAX_ARGS {
            return Err(ProtocolError("too many arguments"));
        }
        args.push(start..i);
    }
    Ok(Some(nl + 1))
}

/// A strict decimal `i64`: optional `-`, digits only, no overflow.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub((d - b'0') as i64)?
        } else {
            v.checked_add((d - b'0') as i64)?
        };
    }
    Some(v)
}

/// Appends the decimal digits of `v`.
pub(crate) fn push_int(out: &mut Vec<u8>, v: i64) {
    let mut digits = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

/// `+<s>\r\n`
pub(crate) fn simple(out: &mut Vec<u8>, s: &str) {
    out.push(b'+');
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `-<msg>\r\n`; line breaks in `msg` become spaces, so a reply stays one line.
pub(crate) fn error(out: &mut Vec<u8>, msg: &str) {
    out.push(b'-');
    out.extend(
        msg.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// `:<v>\r\n`
pub(crate) fn integer(out: &mut Vec<u8>, v: i64) {
    out.push(b':');
    push_int(out, v);
    out.extend_from_slice(b"\r\n");
}

/// `$<len>\r\n<data>\r\n`
pub(crate) fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    push_int(out, data.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The null bulk `$-1\r\n` (a missing key).
pub(crate) fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// `*<n>\r\n`, to be followed by `n` replies.
pub(crate) fn array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    push_int(out, n as i64);
    out.extend_from_slice(b"\r\n");
}
