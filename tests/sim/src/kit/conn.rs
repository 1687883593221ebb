//! Connections a fault can reset. axum gives handlers no access to their socket, so the kit's
//! listener wraps each stream with a switch the fault layer reaches through `ConnectInfo`: once
//! thrown, every write fails, hyper drops the connection, and the drop closes the socket with
//! `SO_LINGER` 0 — a real RST, which clients report as "connection reset by peer".

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The kit's listener: a TCP listener whose connections can be reset.
pub(crate) struct SimListener(pub(crate) TcpListener);

impl Listener for SimListener {
    type Io = ConnStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (ConnStream, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((tcp, peer)) => {
                    // A partial body must leave at once, not wait for Nagle (`Cut::MidBody`).
                    let _ = tcp.set_nodelay(true);
                    return (
                        ConnStream {
                            tcp,
                            cut: Arc::default(),
                        },
                        peer,
                    );
                }
                // Out of file descriptors and the like: waiting lets connections close.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A TCP stream with a reset switch.
pub(crate) struct ConnStream {
    tcp: TcpStream,
    cut: Arc<AtomicBool>,
}

impl ConnStream {
    fn refused(&self) -> Option<io::Error> {
        self.cut
            .load(Ordering::Acquire)
            .then(|| io::Error::from(io::ErrorKind::ConnectionReset))
    }
}

impl AsyncRead for ConnStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

impl Drop for ConnStream {
    fn drop(&mut self) {
        if self.cut.load(Ordering::Acquire) {
            // Linger 0 turns the close into an RST; it never blocks.
            let _ = socket2::SockRef::from(&self.tcp).set_linger(Some(Duration::ZERO));
        }
    }
}

/// A connection's reset switch and its client's address, as request extensions carry them
/// (`ConnectInfo<Conn>`).
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    cut: Arc<AtomicBool>,
    peer: SocketAddr,
}

impl Conn {
    /// Makes the connection fail every further write and close with an RST.
    pub(crate) fn reset(&self) {
        self.cut.store(true, Ordering::Release);
    }

    /// The TCP peer: the address the client connects from.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl Connected<IncomingStream<'_, SimListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        Conn {
            cut: stream.io().cut.clone(),
            peer: *stream.remote_addr(),
        }
    }
}
