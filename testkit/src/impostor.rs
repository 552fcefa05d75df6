//! A man in the middle on loopback: a TCP relay to a real sidecar that a
//! test can turn into an impostor on the same address, answering TLS with a
//! certificate of its own and keeping every byte a client sends it once the
//! handshake is through. What it kept is what a client would have leaked.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Impostor {
    /// `https://127.0.0.1:<port>`: where clients are told the sidecar is.
    pub base: String,
    /// The impostor's own certificate (`sha256:…`).
    pub fingerprint: String,
    posing: Arc<AtomicBool>,
    switches: watch::Sender<u64>,
    /// Connections it answered as the impostor.
    attempts: Arc<AtomicUsize>,
    /// Every byte clients sent it after a completed handshake.
    captured: Arc<Mutex<Vec<u8>>>,
    _dir: tempfile::TempDir,
}

impl Impostor {
    /// Relays to `target` (`host:port`) until [`Impostor::pose`].
    pub async fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let (id, _) = tls::Identity::load_or_create(&cert, &key).expect("the impostor's identity");
        let fingerprint = id.fingerprint.to_string();
        let reloading = Arc::new(tls::server::ReloadingIdentity::new(id, cert, key));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls::server::server_config(reloading)));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the relay");
        let base = format!("https://{}", listener.local_addr().expect("its address"));
        let posing = Arc::new(AtomicBool::new(false));
        let (switches, _) = watch::channel(0u64);
        let attempts = Arc::new(AtomicUsize::new(0));
        let captured = Arc::new(Mutex::new(Vec::new()));
        let (target, posing2, switches2, attempts2, captured2) =
            (target.to_owned(), posing.clone(), switches.clone(), attempts.clone(), captured.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if posing2.load(Ordering::SeqCst) {
                    attempts2.fetch_add(1, Ordering::SeqCst);
                    let (acceptor, captured) = (acceptor.clone(), captured2.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(client).await else { return };
                        let mut buf = vec![0u8; 64 << 10];
                        while let Ok(n) = tls.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            captured.lock().unwrap().extend_from_slice(&buf[..n]);
                            let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]").await;
                        }
                    });
                    continue;
                }
                let mut switched = switches2.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = switched.changed() => {}
                    }
                });
            }
        });
        Self { base, fingerprint, posing, switches, attempts, captured, _dir: dir }
    }

    /// From now on the impostor answers (relayed connections are closed).
    pub fn pose(&self) {
        self.posing.store(true, Ordering::SeqCst);
        self.switches.send_modify(|n| *n += 1);
    }

    /// Back to relaying to the real sidecar.
    pub fn step_aside(&self) {
        self.posing.store(false, Ordering::SeqCst);
        self.switches.send_modify(|n| *n += 1);
    }

    /// Connections the impostor answered.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    /// What clients sent the impostor inside TLS.
    pub fn captured(&self) -> Vec<u8> {
        self.captured.lock().unwrap().clone()
    }
}
