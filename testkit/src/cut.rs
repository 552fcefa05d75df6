//! A TCP proxy on loopback that a test can cut, as a network blip would:
//! every open connection closed at once and new ones refused, until restored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct CutProxy {
    /// `http://<ip>:<port>`: where to connect instead of the target.
    pub base: String,
    up: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl CutProxy {
    /// Forwards every connection to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        Self::start_on("127.0.0.1", target).await
    }

    /// [`CutProxy::start`], listening on address `ip`.
    pub async fn start_on(ip: &str, target: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind the proxy");
        let base = format!("http://{}", listener.local_addr().expect("its address"));
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let (target, up2, cuts2) = (target.to_owned(), up.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let mut cut = cuts2.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { base, up, cuts }
    }

    /// Closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
