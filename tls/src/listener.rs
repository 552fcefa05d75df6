//! HTTPS for axum (the sidecar's port, the console's agent port): a listener
//! that completes TLS handshakes (many at once, each bounded in time) before
//! axum sees a connection, and answers a plain-HTTP request on the TLS port
//! with a readable refusal instead of garbage.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; connections past it are closed.
const HANDSHAKES_MAX: usize = 256;
/// Handshaken connections waiting for axum to take them.
const READY_MAX: usize = 64;

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The answer to plain HTTP on the HTTPS port (the request is not read, and
/// whatever credentials it carried were already sent in clear by the client).
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 147\r\n\r\n{\"error\":{\"code\":\"bad_request\",\"message\":\"this port speaks HTTPS only: use https:// and pin its certificate (`dockward-sidecar tls fingerprint`)\"}}";

/// Accepts TCP connections and hands axum only those whose TLS handshake
/// completed.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_MAX);
        let tls = TlsAcceptor::from(config);
        let permits = Arc::new(Semaphore::new(HANDSHAKES_MAX));
        let acceptor = tokio::spawn(async move {
            loop {
                let (sock, peer) = match tcp.accept().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, as axum does.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "too many TLS handshakes in progress; closing the connection");
                    continue;
                };
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&tls, sock)).await {
                        Ok(Ok(Some(stream))) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Ok(None)) => tracing::info!(%peer, "plain HTTP on the HTTPS port: refused"),
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local, acceptor })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// The handshake, or `None` when the client spoke plain HTTP (answered with a 400).
async fn handshake(tls: &TlsAcceptor, mut sock: TcpStream) -> io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    if sock.peek(&mut first).await? == 1 && first[0] != TLS_HANDSHAKE_RECORD {
        if first[0].is_ascii_uppercase() {
            sock.write_all(PLAIN_HTTP_ANSWER).await?;
        }
        sock.shutdown().await?;
        return Ok(None);
    }
    let _ = sock.set_nodelay(true);
    tls.accept(sock).await.map(Some)
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The acceptor task is gone (it never returns): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_http_answer_is_well_formed() {
        let text = std::str::from_utf8(PLAIN_HTTP_ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().parse().unwrap();
        assert_eq!(len, body.len());
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(parsed["error"]["code"], "bad_request");
    }
}
