//! End to end: `examples/websocket_chat` as a server; two tungstenite
//! clients in the test see each other's messages; the binary's client mode
//! checks that every message of every client reaches every client in order;
//! a plain HTTP request is refused without hurting the server.

mod example_support;

use std::io::Write;
use std::net::TcpStream;

use example_support::{closed_by_peer, run_example, Server, PATIENCE};
use tungstenite::Message;

type Ws = tungstenite::WebSocket<TcpStream>;

fn join(server: &Server) -> Ws {
    let stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (mut ws, _) =
        tungstenite::client(format!("ws://{}/", server.addr), stream).expect("handshake");
    let welcome = ws.read().expect("welcome");
    assert!(
        welcome.to_text().unwrap().starts_with("* welcome #"),
        "{welcome:?}"
    );
    ws
}

#[test]
fn every_message_reaches_every_client() {
    let server = Server::start("websocket_chat", &[]);

    // Not a WebSocket handshake: refused, server unharmed.
    let mut raw = TcpStream::connect(server.addr).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed_by_peer(&mut raw));

    let mut a = join(&server);
    let mut b = join(&server);
    a.send(Message::text("hello from a")).unwrap();
    b.send(Message::text("hello from b")).unwrap();
    for ws in [&mut a, &mut b] {
        let mut got = vec![ws.read().unwrap().into_text().unwrap().to_string()];
        got.push(ws.read().unwrap().into_text().unwrap().to_string());
        got.sort();
        assert_eq!(got, ["hello from a", "hello from b"]);
    }
    // A ping is answered (the reader's pong goes through the writer fiber).
    a.send(Message::Ping(b"p".to_vec().into())).unwrap();
    loop {
        match a.read().unwrap() {
            Message::Pong(p) => break assert_eq!(&p[..], b"p"),
            Message::Text(t) => panic!("unexpected {t}"),
            _ => {}
        }
    }
    a.close(None).unwrap();
    drop(a);

    let addr = server.addr.to_string();
    let (status, out, err) = run_example(
        "websocket_chat",
        &["client", &addr, "--clients", "8", "--messages", "50"],
    );
    assert!(
        status.success(),
        "client failed: {status}\nstdout: {out}\nstderr: {err}"
    );
    assert!(
        out.starts_with("ok: 8 clients x 50 messages, 3200 deliveries"),
        "stdout: {out}"
    );

    // b stayed connected through all of it and saw the client mode's
    // traffic, each sender's in order: the first one it sees is some
    // sender's message 0.
    let text = b.read().unwrap().into_text().unwrap();
    let (sender, index) = text.split_once(':').expect("a 'sender:index' message");
    assert!(sender.parse::<usize>().is_ok_and(|s| s < 8), "{text}");
    assert_eq!(index, "0", "{text}");
}
