//! Where a test's notifications land, on loopback: an HTTP receiver that
//! records every request (and can be told to fail, as a channel that is
//! down), and an SMTP sink that accepts every message. Both speak just
//! enough of the real protocol for a real client (reqwest, lettre).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// An HTTP/1.1 receiver on 127.0.0.1.
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (g, s) = (g.clone(), s.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, g, s).await;
                });
            }
        });
        Receiver { url, got, status, task }
    }

    /// Answers every request with `status` from now on (500: a channel that is down).
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    conn: tokio::net::TcpStream,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).await?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len.min(1 << 20)];
        r.read_exact(&mut body).await?;
        let code = status.load(Ordering::Relaxed);
        got.lock().unwrap_or_else(|e| e.into_inner()).push(Received {
            method,
            path,
            headers,
            body,
            at: Instant::now(),
            status: code,
        });
        let reason = if code < 300 { "OK" } else { "Error" };
        let answer =
            format!("HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}");
        r.get_mut().write_all(answer.as_bytes()).await?;
    }
}

/// An SMTP server on 127.0.0.1 that accepts every message.
pub struct SmtpSink {
    pub port: u16,
    got: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP sink");
        let port = listener.local_addr().expect("its address").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let g = g.clone();
                tokio::spawn(async move {
                    let _ = smtp(conn, g).await;
                });
            }
        });
        SmtpSink { port, got, task }
    }

    /// Every message so far (its headers and body, as sent after DATA).
    pub fn messages(&self) -> Vec<String> {
        self.got.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn smtp(conn: tokio::net::TcpStream, got: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    let mut r = BufReader::new(conn);
    r.get_mut().write_all(b"220 sink ESMTP\r\n").await?;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "DATA" => {
                r.get_mut().write_all(b"354 go on\r\n").await?;
                let mut message = String::new();
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).await? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" || l == ".\n" {
                        break;
                    }
                    message.push_str(&l);
                }
                got.lock().unwrap_or_else(|e| e.into_inner()).push(message);
                b"250 queued\r\n"
            }
            "QUIT" => {
                r.get_mut().write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 not here\r\n",
        };
        r.get_mut().write_all(answer).await?;
    }
}
