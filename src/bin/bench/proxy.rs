//! A TCP forwarder the bench owns (as `tests/api/helpers/tcp_proxy.rs`), to cut PostgreSQL off from
//! the gateway without stopping the shared server: while cut, open connections are dropped and new
//! ones are accepted and closed at once; `restore` lets traffic through again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A forwarder from `127.0.0.1:<port>` to a target.
#[derive(Debug)]
pub struct TcpProxy {
    /// The port to point the gateway at.
    pub port: u16,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl TcpProxy {
    /// Starts forwarding to `target` (e.g. `127.0.0.1:5432`).
    pub async fn start(target: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let target = target.to_owned();
        let (accept_up, accept_gen) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = accept_gen.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(Self { port, up, generation })
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_cut_drops_open_connections_until_restored() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 64];
                    while let Ok(n @ 1..) = s.read(&mut b).await {
                        let _ = s.write_all(&b[..n]).await;
                    }
                });
            }
        });
        let proxy = TcpProxy::start(&target).await.unwrap();
        let addr = ("127.0.0.1", proxy.port);
        let mut open = TcpStream::connect(addr).await.unwrap();
        open.write_all(b"hi").await.unwrap();
        let mut b = [0u8; 2];
        open.read_exact(&mut b).await.unwrap();
        proxy.cut();
        assert_eq!(
            open.read(&mut b).await.unwrap_or(0),
            0,
            "the open connection is dropped"
        );
        let mut refused = TcpStream::connect(addr).await.unwrap();
        assert_eq!(
            refused.read(&mut b).await.unwrap_or(0),
            0,
            "a new one is closed at once"
        );
        proxy.restore();
        let mut again = TcpStream::connect(addr).await.unwrap();
        again.write_all(b"ok").await.unwrap();
        again.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ok");
    }
}
