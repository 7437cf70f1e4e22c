//! A line-based chat server on threadlet: every line a client sends is
//! broadcast to all other clients, prefixed with the sender's name. One
//! fiber per connection reads lines with a plain `BufReader`; the list of
//! connected clients is a `Mutex`'d map of stream clones.
//!
//! Run: `cargo run --release --example chat -- 127.0.0.1:7879` (the address
//! defaults to 127.0.0.1:7879), then connect a few terminals with
//! `nc 127.0.0.1 7879` and type. `/nick NAME` changes your name.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use threadlet::net::{TcpListener, TcpStream};

/// Connected clients by id. The lock is held only to copy the list (never
/// while writing to a socket, which may park the fiber).
type Clients = Arc<Mutex<HashMap<u64, Arc<TcpStream>>>>;

fn broadcast(clients: &Clients, from: u64, line: &str) {
    let peers: Vec<Arc<TcpStream>> = clients
        .lock()
        .unwrap()
        .iter()
        .filter(|(&id, _)| id != from)
        .map(|(_, s)| s.clone())
        .collect();
    for peer in peers {
        // A peer that went away is removed by its own fiber.
        let _ = (&*peer).write_all(line.as_bytes());
    }
}

fn serve_client(id: u64, stream: TcpStream, clients: Clients) -> std::io::Result<()> {
    let stream = Arc::new(stream);
    let mut name = format!("guest{id}");
    (&*stream).write_all(format!("welcome, {name}! /nick NAME renames you\n").as_bytes())?;
    clients.lock().unwrap().insert(id, stream.clone());
    broadcast(&clients, id, &format!("* {name} joined\n"));
    let result = (|| {
        for line in BufReader::new(&*stream).lines() {
            let line = line?;
            let line = line.trim_end();
            if let Some(new) = line.strip_prefix("/nick ") {
                let new = new.trim().to_owned();
                broadcast(&clients, id, &format!("* {name} is now {new}\n"));
                name = new;
            } else if !line.is_empty() {
                broadcast(&clients, id, &format!("[{name}] {line}\n"));
            }
        }
        Ok(())
    })();
    clients.lock().unwrap().remove(&id);
    broadcast(&clients, id, &format!("* {name} left\n"));
    result
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7879".to_owned());
    threadlet::run(move || {
        let listener = TcpListener::bind(&addr)?;
        println!("chat server listening on {}", listener.local_addr()?);
        let clients: Clients = Arc::default();
        let next_id = AtomicU64::new(1);
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            let clients = clients.clone();
            threadlet::spawn(move || serve_client(id, stream, clients));
        }
        Ok(())
    })
}
