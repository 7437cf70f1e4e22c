//! The Rust Book's final multithreaded web server (chapter 21, "Graceful
//! Shutdown and Cleanup": `ThreadPool`, `Worker`, `Job`, an `mpsc` channel
//! whose receiver is shared as `Arc<Mutex<Receiver>>`) moved onto fibers by
//! its `use` lines alone. Everything between the two marker comments is the
//! Book's program as written for `std` (files served from memory instead of
//! disk, and the listener handed in, so the test can pick a free port); only
//! the `use` lines differ:
//!
//! ```text
//! -use std::net::{TcpListener, TcpStream};
//! -use std::sync::{mpsc, Arc, Mutex};
//! -use std::thread;
//! +use threadlet::net::{TcpListener, TcpStream};
//! +use threadlet::sync::{mpsc, Arc, Mutex};
//! +use threadlet::thread;
//! ```
//!
//! The test then sends `REQUESTS` concurrent `GET /sleep` requests to a pool
//! of `REQUESTS` workers on a 2-worker runtime: every worker sleeps in
//! `thread::sleep` and blocks in `Mutex::lock` / `Receiver::recv`, which park
//! fibers, so all requests are served at once.

use std::io::{prelude::*, BufReader};
use std::time::{Duration, Instant};

// ---- the Book's program, with threadlet `use` lines ----
use threadlet::net::{TcpListener, TcpStream};
use threadlet::sync::{mpsc, Arc, Mutex};
use threadlet::thread;

/// A fixed set of workers that run the jobs sent to the pool.
pub struct ThreadPool {
    workers: Vec<Worker>,
    sender: Option<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

impl ThreadPool {
    /// A pool of `size` workers; panics if `size` is zero.
    pub fn new(size: usize) -> ThreadPool {
        assert!(size > 0);

        let (sender, receiver) = mpsc::channel();

        let receiver = Arc::new(Mutex::new(receiver));

        let mut workers = Vec::with_capacity(size);

        for id in 0..size {
            workers.push(Worker::new(id, Arc::clone(&receiver)));
        }

        ThreadPool {
            workers,
            sender: Some(sender),
        }
    }

    /// Hands `f` to the next free worker.
    pub fn execute<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        let job = Box::new(f);

        self.sender.as_ref().unwrap().send(job).unwrap();
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        drop(self.sender.take());

        for worker in self.workers.drain(..) {
            println!("Shutting down worker {}", worker.id);

            worker.thread.join().unwrap();
        }
    }
}

struct Worker {
    id: usize,
    thread: thread::JoinHandle<()>,
}

impl Worker {
    fn new(id: usize, receiver: Arc<Mutex<mpsc::Receiver<Job>>>) -> Worker {
        let thread = thread::spawn(move || loop {
            let message = receiver.lock().unwrap().recv();

            match message {
                Ok(job) => {
                    println!("Worker {id} got a job; executing.");

                    job();
                }
                Err(_) => {
                    println!("Worker {id} disconnected; shutting down.");
                    break;
                }
            }
        });

        Worker { id, thread }
    }
}

fn main_with(listener: TcpListener, pool_size: usize, requests: usize) {
    let pool = ThreadPool::new(pool_size);

    for stream in listener.incoming().take(requests) {
        let stream = stream.unwrap();

        pool.execute(|| {
            handle_connection(stream);
        });
    }

    println!("Shutting down.");
}

fn handle_connection(mut stream: TcpStream) {
    let buf_reader = BufReader::new(&stream);
    let request_line = buf_reader.lines().next().unwrap().unwrap();

    let (status_line, contents) = match &request_line[..] {
        "GET / HTTP/1.1" => ("HTTP/1.1 200 OK", HELLO_HTML),
        "GET /sleep HTTP/1.1" => {
            thread::sleep(Duration::from_secs(SLEEP_SECS));
            ("HTTP/1.1 200 OK", HELLO_HTML)
        }
        _ => ("HTTP/1.1 404 NOT FOUND", NOT_FOUND_HTML),
    };

    let length = contents.len();

    let response = format!("{status_line}\r\nContent-Length: {length}\r\n\r\n{contents}");

    stream.write_all(response.as_bytes()).unwrap();
}
// ---- end of the Book's program ----

const HELLO_HTML: &str = "<!DOCTYPE html><html><body><h1>Hello!</h1></body></html>\n";
const NOT_FOUND_HTML: &str = "<!DOCTYPE html><html><body><h1>Oops!</h1></body></html>\n";
const SLEEP_SECS: u64 = 1;
const REQUESTS: usize = 40;

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_books_pool_serves_concurrent_requests_on_fibers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = TcpListener::from(listener);
    let rt = threadlet::Runtime::builder().workers(2).build().unwrap();
    let server = rt.spawn(move || main_with(listener, REQUESTS, REQUESTS + 1));

    // The clients are plain OS threads (they are the test, not the program).
    let start = Instant::now();
    let clients: Vec<_> = (0..REQUESTS)
        .map(|_| std::thread::spawn(move || get(addr, "/sleep")))
        .collect();
    for c in clients {
        let reply = c.join().unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(reply.ends_with(HELLO_HTML));
    }
    let elapsed = start.elapsed();
    assert!(get(addr, "/missing").starts_with("HTTP/1.1 404 NOT FOUND"));
    server.join().unwrap();
    // 40 one-second sleeps on 2 workers: 20 s if a sleep held its worker.
    assert!(
        elapsed < Duration::from_secs(15),
        "{REQUESTS} sleeping requests took {elapsed:?}: the pool's fibers did not sleep concurrently"
    );
}
