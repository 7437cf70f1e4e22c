//! RELIABILITY row 4: a spurious wakeup neither returns an error nor
//! busy-loops. A reader parked on a silent socket gets fake readiness events
//! (and plain spurious unparks): it retries, parks again, uses no CPU while
//! parked, and finally returns the real bytes.

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use threadlet::net::{TcpListener, TcpStream};

/// The tests measure process CPU time: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage for the call.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn wait_until_parked(handle: &threadlet::JoinHandle<std::io::Result<Vec<u8>>>) {
    while !threadlet::runtime::dump()
        .iter()
        .any(|f| f.id == handle.fiber().id() && f.state == "parked: tcp read")
    {
        threadlet::fiber::sleep(Duration::from_millis(1));
    }
}

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn fake_readiness_events_keep_the_reader_parked_and_idle() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    threadlet::run(|| {
        let (mut client, server) = pair();
        let server = std::sync::Arc::new(server);
        let reader_side = server.clone();
        let reader = threadlet::spawn(move || {
            let mut buf = vec![0u8; 16];
            let n = (&*reader_side).read(&mut buf)?;
            buf.truncate(n);
            Ok(buf)
        });
        wait_until_parked(&reader);
        for _ in 0..1000 {
            threadlet::net::__inject_readiness(&server);
            threadlet::yield_now();
        }
        wait_until_parked(&reader);
        assert!(!reader.is_finished(), "a fake event made the read return");
        // Parked means parked: no CPU burnt over a quiet stretch.
        let (cpu0, t0) = (cpu_time(), Instant::now());
        threadlet::fiber::sleep(Duration::from_millis(400));
        let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
        assert!(
            cpu < wall / 2,
            "process used {cpu:?} of CPU in {wall:?} while the reader was parked: a busy loop?"
        );
        client.write_all(b"real bytes").unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), b"real bytes");
    });
}

#[test]
fn spurious_unparks_keep_the_reader_parked() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    threadlet::run(|| {
        let (mut client, server) = pair();
        let reader = threadlet::spawn(move || {
            let mut buf = vec![0u8; 16];
            let n = (&server).read(&mut buf)?;
            buf.truncate(n);
            Ok(buf)
        });
        wait_until_parked(&reader);
        for _ in 0..1000 {
            reader.fiber().unpark();
            threadlet::yield_now();
        }
        wait_until_parked(&reader);
        assert!(
            !reader.is_finished(),
            "a spurious unpark made the read return"
        );
        client.write_all(b"data").unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), b"data");
    });
}
