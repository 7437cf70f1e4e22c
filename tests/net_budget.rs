//! RELIABILITY row 15: an always-ready socket cannot starve timers and other
//! fibers. On a runtime with one worker, a fiber reads a connection that a
//! plain thread floods, so its reads never have to park; the operation
//! budget makes it yield, so a sleeping fiber still wakes and an accept on
//! another listener still completes.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use threadlet::net::TcpListener;

#[test]
fn flooding_connection_does_not_starve_timers_or_accepts() {
    let (done_tx, done_rx) = mpsc::channel();
    // The runtime runs on its own thread so that a starved runtime shows up
    // as a timeout here instead of a hung test.
    std::thread::spawn(move || {
        let rt = threadlet::Runtime::builder().workers(1).build().unwrap();
        let result = rt.block_on(|| {
            let flood_listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let flood_addr = flood_listener.local_addr().unwrap();
            let flooder = std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(flood_addr).unwrap();
                let chunk = [0x5au8; 64 * 1024];
                // Until the reader goes away (then the write fails).
                while s.write_all(&chunk).is_ok() {}
            });
            let (conn, _) = flood_listener.accept().unwrap();
            // Let the kernel buffer fill so every read finds data.
            let mut probe = [0u8; 1];
            conn.peek(&mut probe).unwrap();

            let stop = Arc::new(AtomicBool::new(false));
            let reads = Arc::new(AtomicU64::new(0));
            let reader = {
                let (stop, reads) = (stop.clone(), reads.clone());
                threadlet::spawn(move || {
                    let mut conn = conn;
                    let mut buf = [0u8; 16];
                    while !stop.load(Ordering::Relaxed) {
                        assert!(conn.read(&mut buf).unwrap() > 0);
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };

            let sleeper = threadlet::spawn(|| threadlet::time::sleep(Duration::from_millis(20)));
            let accept_listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let accept_addr = accept_listener.local_addr().unwrap();
            let accepter = threadlet::spawn(move || accept_listener.accept().map(|(_, peer)| peer));
            let connector =
                std::thread::spawn(move || std::net::TcpStream::connect(accept_addr).unwrap());

            sleeper.join().unwrap();
            let peer = accepter.join().unwrap().unwrap();
            let client = connector.join().unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            let reads_meanwhile = reads.load(Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
            reader.join().unwrap();
            flooder.join().unwrap();
            reads_meanwhile
        });
        let _ = done_tx.send(result);
    });
    let reads = done_rx.recv_timeout(Duration::from_secs(120)).expect(
        "the sleeping fiber or the accept never ran: the flooding reader starved its worker",
    );
    assert!(reads > 0, "the reader should have been reading meanwhile");
}
