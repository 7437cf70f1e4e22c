//! A fiber that joins its own handle panics, as std does for a thread
//! (EDEADLK), instead of parking forever.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use threadlet::{JoinHandle, Runtime};

const HANG: Duration = Duration::from_secs(20);

/// A fiber that joins its own handle panics (std: EDEADLK) with a message
/// saying what to do, instead of parking forever.
#[test]
fn joining_own_handle_panics_instead_of_hanging() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (handle_tx, handle_rx) = threadlet::sync::mpsc::channel::<JoinHandle<()>>();
    let (msg_tx, msg_rx) = mpsc::channel();
    let h = rt.handle().spawn_with(
        threadlet::fiber::Builder::new().name("self-joiner".into()),
        move || {
            let me = handle_rx.recv().unwrap();
            assert_eq!(me.fiber().id(), threadlet::fiber::current().id());
            let err = panic::catch_unwind(AssertUnwindSafe(|| me.join()))
                .expect_err("joining its own handle returned");
            let msg = err
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "<non-string payload>".into());
            msg_tx.send(msg).unwrap();
        },
    );
    let h = h.unwrap();
    handle_tx.send(h).unwrap();
    let msg = msg_rx
        .recv_timeout(HANG)
        .expect("a fiber joining itself hangs");
    assert!(msg.contains("self-joiner"), "{msg}");
    assert!(msg.contains("own JoinHandle"), "{msg}");
    assert!(msg.contains("EDEADLK"), "{msg}");
    assert!(msg.contains("another fiber or thread"), "{msg}");
}
