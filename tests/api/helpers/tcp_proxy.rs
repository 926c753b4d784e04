//! `TcpProxy`: a TCP forwarder the test owns, to cut a shared server (PostgreSQL, Redis) off from
//! the gateway without ever stopping the server itself.
//!
//! While cut, open connections are dropped and new ones are accepted and closed at once, as a
//! crashed or unreachable server would behave; while blackholed, connections stay open and nothing
//! comes back (a server behind a dead network path); `restore` lets traffic through again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A forwarder from `127.0.0.1:<port>` to `target`.
#[derive(Debug)]
pub struct TcpProxy {
    /// The port to point the gateway at.
    pub port: u16,
    up: Arc<AtomicBool>,
    blackholed: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    generation: watch::Sender<u64>,
}

impl TcpProxy {
    /// Starts forwarding to `target` (e.g. `127.0.0.1:5432`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let target = target.to_owned();
        let blackholed = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (accept_up, accept_gen, accept_hole, accept_count) =
            (up.clone(), generation.clone(), blackholed.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                accept_count.fetch_add(1, Ordering::SeqCst);
                let mut cut = accept_gen.subscribe();
                if accept_hole.load(Ordering::SeqCst) {
                    // Held open, never answered, until the next change of state.
                    tokio::spawn(async move {
                        let _ = cut.changed().await;
                        drop(client);
                    });
                    continue;
                }
                if !accept_up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let hole = accept_hole.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {
                            if hole.load(Ordering::SeqCst) {
                                let _ = cut.changed().await;
                            }
                        }
                    }
                });
            }
        });
        Self {
            port,
            up,
            blackholed,
            accepted,
            generation,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Stops forwarding without closing anything: open and new connections stay open and silent.
    pub fn blackhole(&self) {
        self.blackholed.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Lets connections through again (held blackholed ones are closed).
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
        if self.blackholed.swap(false, Ordering::SeqCst) {
            self.generation.send_modify(|g| *g += 1);
        }
    }
}
