//! RELIABILITY row 16: half-close, reset and partial writes. FIN gives
//! `Ok(0)` while writes keep working; a reset (SO_LINGER 0 close) gives
//! `ConnectionReset`; 64 MiB written to a slow reader arrives intact (the
//! writer parks on a full buffer instead of spinning).

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use threadlet::net::{TcpListener, TcpStream};

fn connected_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn fin_reads_zero_and_writes_still_work() {
    threadlet::run(|| {
        let (mut client, mut server) = connected_pair();
        client.write_all(b"last words").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        // The server parks until data, then sees EOF as Ok(0).
        let mut got = Vec::new();
        server.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"last words");
        assert_eq!(server.read(&mut [0u8; 8]).unwrap(), 0, "EOF stays EOF");
        // The other direction still works.
        server.write_all(b"reply after FIN").unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "reply after FIN");
    });
}

#[test]
fn fin_wakes_a_parked_reader_with_zero() {
    threadlet::run(|| {
        let (client, server) = connected_pair();
        let reader = threadlet::spawn(move || (&server).read(&mut [0u8; 8]));
        while !threadlet::runtime::dump()
            .iter()
            .any(|f| f.id == reader.fiber().id() && f.state == "parked: tcp read")
        {
            threadlet::fiber::sleep(Duration::from_millis(1));
        }
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 0);
    });
}

#[test]
fn reset_is_connection_reset() {
    threadlet::run(|| {
        let (client, server) = connected_pair();
        let reader = threadlet::spawn(move || (&server).read(&mut [0u8; 8]));
        while !threadlet::runtime::dump()
            .iter()
            .any(|f| f.id == reader.fiber().id() && f.state == "parked: tcp read")
        {
            threadlet::fiber::sleep(Duration::from_millis(1));
        }
        // Linger 0: close sends RST instead of FIN.
        client.set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        let err = reader.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    });
}

/// xorshift64 stream: the same seed gives the same bytes on both sides.
fn fill(state: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

fn fnv1a(hash: &mut u64, data: &[u8]) {
    for &b in data {
        *hash ^= b as u64;
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

#[test]
fn sixty_four_mib_to_a_slow_reader_arrive_intact() {
    const TOTAL: usize = 64 << 20;
    threadlet::run(|| {
        let (client, server) = connected_pair();
        let writer = threadlet::spawn(move || {
            let mut client = client;
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            let mut hash = 0xcbf2_9ce4_8422_2325u64;
            let mut chunk = vec![0u8; 1 << 20];
            let mut sent = 0;
            while sent < TOTAL {
                fill(&mut seed, &mut chunk);
                fnv1a(&mut hash, &chunk);
                // One call writes 1 MiB: the socket buffer takes far less, so
                // write_all parks on every chunk.
                client.write_all(&chunk).unwrap();
                sent += chunk.len();
            }
            client.shutdown(Shutdown::Write).unwrap();
            hash
        });
        let reader = threadlet::spawn(move || {
            let mut server = server;
            let mut hash = 0xcbf2_9ce4_8422_2325u64;
            let mut buf = vec![0u8; 3000];
            let mut got = 0usize;
            let mut reads = 0u64;
            loop {
                let n = server.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                fnv1a(&mut hash, &buf[..n]);
                got += n;
                reads += 1;
                // Slow: a pause every 256 small reads.
                if reads % 256 == 0 {
                    threadlet::fiber::sleep(Duration::from_millis(1));
                }
            }
            (got, hash)
        });
        let sent_hash = writer.join().unwrap();
        let (got, got_hash) = reader.join().unwrap();
        assert_eq!(got, TOTAL);
        assert_eq!(got_hash, sent_hash, "data corrupted in transit");
    });
}
