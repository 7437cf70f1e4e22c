//! A WebSocket chat room on threadlet with tungstenite, unchanged: every
//! text message a client sends is broadcast to every connected client
//! (the sender too).
//!
//! ```text
//! cargo run --release --example websocket_chat -- 127.0.0.1:9001
//! cargo run --release --example websocket_chat -- client 127.0.0.1:9001 --clients 10 --messages 100
//! ```
//!
//! Server: `websocket_chat [ADDR]` (default 127.0.0.1:9001, port 0 picks a
//! free one); prints `listening on ADDR` once it accepts. Client:
//! `websocket_chat client ADDR [--clients N] [--messages M]` connects N
//! clients, each sends M messages, and each checks that it receives all
//! N×M, every sender's in order; prints one `ok: …` line and exits 0, or
//! names what went wrong and exits 1.
//!
//! Per connection, two fibers and one rule: **only the writer fiber writes
//! to the socket.**
//! - The reader fiber owns a `WebSocket` over [`Incoming`], which reads the
//!   socket but turns every write (the handshake response, the pong to a
//!   ping, the close reply) into bytes sent to the writer. It passes each
//!   text message to the room.
//! - The writer fiber owns a `WebSocket` that only writes, and its outbox
//!   (a bounded channel): raw bytes from the reader, messages from the room.
//! - The room (a `Mutex<HashMap>` of outboxes) broadcasts by `try_send` to
//!   every outbox. A client whose outbox is full reads too slowly to keep
//!   up: it is dropped, so it never holds up the others.
//!
//! After the handshake the room sends the new client `* welcome #ID` before
//! any broadcast (both happen under the room's lock), so a client that has
//! read its welcome knows it will see every later message.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use threadlet::net::{TcpListener, TcpStream};
use threadlet::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use threadlet::sync::Mutex;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// Messages (and raw writes) queued for one client before it counts as too
/// slow and is dropped.
const OUTBOX: usize = 4096;
/// Largest message a client may send. With [`OUTBOX`] this bounds what a
/// slow client can make the server hold: queued messages are shared by all
/// their recipients, so at most `OUTBOX` distinct ones, 64 MiB.
const MAX_MESSAGE: usize = 16 * 1024;

enum Out {
    /// Bytes tungstenite wrote on the reader's side (handshake, pong, close).
    Raw(Vec<u8>),
    /// A message for this client.
    Msg(Message),
}

/// The reading half of a connection: reads the socket, forwards writes.
struct Incoming {
    stream: Arc<TcpStream>,
    outbox: SyncSender<Out>,
}

impl Read for Incoming {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.stream).read(buf)
    }
}

impl Write for Incoming {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Blocking send: a pong or a close reply is never dropped.
        self.outbox.send(Out::Raw(buf.to_vec())).map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the writer fiber has stopped")
        })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writing half: a socket that is only written.
struct Outgoing(Arc<TcpStream>);

impl Read for Outgoing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the writer half does not read",
        ))
    }
}

impl Write for Outgoing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct Room {
    next: u64,
    members: HashMap<u64, SyncSender<Out>>,
}

impl Room {
    /// Sends `msg` to every member, dropping those that cannot keep up.
    fn broadcast(&mut self, msg: &Message) {
        self.members
            .retain(|id, outbox| match outbox.try_send(Out::Msg(msg.clone())) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    eprintln!("client #{id} is too slow: dropped");
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
    }
}

fn writer(stream: Arc<TcpStream>, outbox: Receiver<Out>) {
    let mut ws = WebSocket::from_raw_socket(Outgoing(stream.clone()), Role::Server, None);
    // Ends when every sender is gone (reader finished, room dropped us) or
    // the socket fails.
    for out in outbox {
        let sent = match out {
            Out::Raw(bytes) => (&*stream).write_all(&bytes).map_err(tungstenite::Error::Io),
            Out::Msg(msg) => ws.send(msg),
        };
        if sent.is_err() {
            break;
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn connection(room: Arc<Mutex<Room>>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let stream = Arc::new(stream);
    let (tx, rx) = sync_channel(OUTBOX);
    {
        let stream = stream.clone();
        threadlet::spawn(move || writer(stream, rx));
    }
    let incoming = Incoming {
        stream: stream.clone(),
        outbox: tx.clone(),
    };
    let mut config = tungstenite::protocol::WebSocketConfig::default();
    config.max_message_size = Some(MAX_MESSAGE);
    config.max_frame_size = Some(MAX_MESSAGE);
    let Ok(mut ws) = tungstenite::accept_with_config(incoming, Some(config)) else {
        return; // not a WebSocket handshake
    };
    let id = {
        let mut room = room.lock().unwrap_or_else(|p| p.into_inner());
        let id = room.next;
        room.next += 1;
        let _ = tx.try_send(Out::Msg(Message::text(format!("* welcome #{id}"))));
        room.members.insert(id, tx);
        id
    };
    loop {
        match ws.read() {
            Ok(msg @ Message::Text(_)) => room
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .broadcast(&msg),
            Ok(_) => {}      // binary, ping, pong: tungstenite answers pings itself
            Err(_) => break, // closed, reset or a protocol error
        }
    }
    room.lock()
        .unwrap_or_else(|p| p.into_inner())
        .members
        .remove(&id);
}

fn serve(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let mut out = io::stdout().lock();
    writeln!(out, "listening on {}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);
    let room = Arc::new(Mutex::new(Room::default()));
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let room = room.clone();
                threadlet::spawn(move || connection(room, stream));
            }
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
    Ok(())
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// One chat client: waits for its welcome, then for everyone else's, sends
/// `messages` lines, and reads until it has every line of every client.
fn chat_client(
    addr: &str,
    me: usize,
    clients: usize,
    messages: usize,
    ready: &threadlet::sync::Barrier,
) -> io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let _ = stream.set_nodelay(true);
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/"), stream)
        .map_err(|e| other(format!("client {me}: handshake: {e}")))?;
    let first = ws.read().map_err(|e| other(format!("client {me}: {e}")))?;
    if !first.to_text().is_ok_and(|t| t.starts_with("* welcome")) {
        return Err(other(format!(
            "client {me}: first message {first:?} is not the welcome"
        )));
    }
    ready.wait(); // everyone is in the room
    for i in 0..messages {
        ws.send(Message::text(format!("{me}:{i}")))
            .map_err(|e| other(format!("client {me}: send: {e}")))?;
    }
    let mut next = vec![0usize; clients]; // next expected message per sender
    let mut got = 0;
    while got < clients * messages {
        let msg = ws
            .read()
            .map_err(|e| other(format!("client {me}: after {got} messages: {e}")))?;
        let text = msg
            .to_text()
            .map_err(|e| other(format!("client {me}: {e}")))?;
        if text.starts_with('*') {
            continue;
        }
        let parsed = text
            .split_once(':')
            .and_then(|(s, i)| Some((s.parse::<usize>().ok()?, i.parse::<usize>().ok()?)));
        match parsed {
            Some((s, i)) if s < clients && next[s] == i => next[s] += 1,
            _ => {
                return Err(other(format!(
                    "client {me}: unexpected message {text:?} (expected per sender {next:?})"
                )))
            }
        }
        got += 1;
    }
    let _ = ws.close(None);
    Ok(())
}

fn client(mut args: impl Iterator<Item = String>) -> io::Result<()> {
    let usage = "usage: websocket_chat client ADDR [--clients N] [--messages M]";
    let addr = args.next().ok_or_else(|| other(usage.into()))?;
    let (mut clients, mut messages) = (10usize, 100usize);
    while let Some(a) = args.next() {
        let v: usize = args
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| other(format!("{a} needs a number; {usage}")))?;
        match a.as_str() {
            "--clients" => clients = v.max(1),
            "--messages" => messages = v,
            _ => return Err(other(format!("unexpected argument {a:?}; {usage}"))),
        }
    }
    let start = Instant::now();
    threadlet::run(move || {
        let ready = Arc::new(threadlet::sync::Barrier::new(clients));
        let handles: Vec<_> = (0..clients)
            .map(|me| {
                let (addr, ready) = (addr.clone(), ready.clone());
                threadlet::spawn(move || chat_client(&addr, me, clients, messages, &ready))
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| other("a client fiber panicked".into()))??;
        }
        Ok::<_, io::Error>(())
    })?;
    let took = start.elapsed();
    let delivered = clients * clients * messages;
    println!(
        "ok: {clients} clients x {messages} messages, {delivered} deliveries in {took:.2?} ({:.0} deliveries/s)",
        delivered as f64 / took.as_secs_f64()
    );
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let result = if args.peek().map(String::as_str) == Some("client") {
        args.next();
        client(args)
    } else {
        let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".into());
        threadlet::run(move || serve(&addr))
    };
    if let Err(e) = result {
        eprintln!("websocket_chat: {e}");
        std::process::exit(1);
    }
}
