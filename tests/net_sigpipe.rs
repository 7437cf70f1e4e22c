//! RELIABILITY row 16, dead peer: writing to a connection whose peer is gone
//! returns `BrokenPipe` — with SIGPIPE at its default action (terminate), so
//! a write without `MSG_NOSIGNAL` would kill this test process. Its own test
//! binary because it changes a process-wide signal disposition.

use std::io::{ErrorKind, Write};

use threadlet::net::{TcpListener, TcpStream, UnixStream};

fn default_sigpipe() {
    // SAFETY: installing the default disposition for SIGPIPE; no handler code.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(old, libc::SIG_ERR);
}

/// Writes until an error; returns the kinds seen, the last one first.
fn write_until_error(mut w: impl Write) -> Vec<ErrorKind> {
    let mut kinds = Vec::new();
    for _ in 0..10_000 {
        match w.write_all(&[7u8; 1024]) {
            Ok(_) => {}
            Err(e) => {
                kinds.insert(0, e.kind());
                if e.kind() == ErrorKind::BrokenPipe {
                    break;
                }
            }
        }
    }
    kinds
}

#[test]
fn dead_peer_is_broken_pipe_not_sigpipe() {
    default_sigpipe();
    threadlet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        drop(server);
        // The first write may still succeed (the RST is the peer's answer to
        // it), then ConnectionReset may come once, then BrokenPipe for good.
        let kinds = write_until_error(&client);
        assert_eq!(kinds.first(), Some(&ErrorKind::BrokenPipe), "{kinds:?}");

        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let kinds = write_until_error(&a);
        assert_eq!(kinds.first(), Some(&ErrorKind::BrokenPipe), "{kinds:?}");

        // Vectored writes go through sendmsg(MSG_NOSIGNAL), too.
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let err = (&a)
            .write_vectored(&[std::io::IoSlice::new(b"x"), std::io::IoSlice::new(b"y")])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    });
}
