//! What the example servers' connection loops share: the blocking socket
//! calls they make besides `Read` and `Write` (for threadlet's and std's
//! `TcpStream` alike: the servers run unchanged on threadlet and, in
//! `benches/peers`, on std threads), their input buffer's growth, and the
//! lingering close.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// A stream whose reads can time out and whose write side can be shut.
pub(crate) trait Socket {
    /// As `TcpStream::set_read_timeout`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// As `TcpStream::shutdown(Shutdown::Write)`.
    fn shutdown_write(&self) -> io::Result<()>;
}

/// How long, and how much, a closing connection is drained (see [`linger`]).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 << 20;

/// Closes a connection the server gave up on (bad input, QUIT) without
/// destroying its last reply: closing a socket with unread input makes the
/// kernel send a reset, which can reach the client before it has read the
/// `-ERR` reply (and fails a client still writing the rest of an oversized
/// request). So: send FIN, then read and discard what the client still sends,
/// until it closes, for at most `LINGER_TIME` and `LINGER_BYTES`.
pub(super) fn linger<S>(stream: &S) -> io::Result<()>
where
    S: Socket,
    for<'a> &'a S: Read,
{
    stream.shutdown_write()?;
    stream.set_read_timeout(Some(LINGER_TIME))?;
    let deadline = Instant::now() + LINGER_TIME;
    let mut sink = [0u8; 16 * 1024];
    let mut drained = 0;
    while drained < LINGER_BYTES && Instant::now() < deadline {
        match (&mut &*stream).read(&mut sink) {
            Ok(0) => break,
            Ok(n) => drained += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// Where the next read into `buf` goes, for a connection whose unparsed
/// input is `buf[*start..*end]`: when the buffer is full, moves that input
/// to the front, or, if it already starts there, doubles the buffer up to
/// `limit` bytes. Empty only when `limit` is reached (the caller enforces
/// its request limit before that).
pub(crate) fn spare<'a>(
    buf: &'a mut Vec<u8>,
    start: &mut usize,
    end: &mut usize,
    limit: usize,
) -> &'a mut [u8] {
    if *end == buf.len() {
        if *start > 0 {
            buf.copy_within(*start..*end, 0);
            *end -= *start;
            *start = 0;
        } else {
            let grown = (buf.len() * 2).min(limit);
            buf.resize(grown, 0);
        }
    }
    &mut buf[*end..]
}
