//! A one-thread HTTP/1.1 server on 127.0.0.1 that serves canned responses, including broken
//! ones, so the download path is tested over a real socket.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the server answers for one path.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `200 OK` with the body and its length.
    Body(Vec<u8>),
    /// `200 OK` announcing `announced` bytes, then closing after sending `body`.
    CutShort { body: Vec<u8>, announced: usize },
    /// `200 OK` without a length, the body ending when the connection closes.
    Unsized(Vec<u8>),
}

/// A running server; it stops with the test process.
pub struct Server {
    /// `http://127.0.0.1:<port>/`.
    pub base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts serving `routes` (path → reply); anything else is `404 Not Found`.
    pub fn start(routes: HashMap<String, Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let base = format!("http://{}/", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                // A client that hangs up mid-reply is part of what is tested; ignore it.
                let _ = serve(stream, &routes, &log);
            }
        });
        Self { base, requests }
    }

    /// The paths requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(
    mut stream: TcpStream,
    routes: &HashMap<String, Reply>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers up to the blank line.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    log.lock().unwrap().push(path.clone());
    let head = |length: Option<usize>| match length {
        Some(n) => format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"),
        None => "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string(),
    };
    match routes.get(&path) {
        Some(Reply::Body(body)) => {
            stream.write_all(head(Some(body.len())).as_bytes())?;
            stream.write_all(body)?;
        }
        Some(Reply::CutShort { body, announced }) => {
            stream.write_all(head(Some(*announced)).as_bytes())?;
            stream.write_all(body)?;
        }
        Some(Reply::Unsized(body)) => {
            stream.write_all(head(None).as_bytes())?;
            stream.write_all(body)?;
        }
        None => {
            stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
        }
    }
    stream.flush()
}
