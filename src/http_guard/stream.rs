//! [`GuardedStream`]: a connection's socket as actix-http reads and writes it. Reads go through
//! the connection's [`Inbound`], which holds each head back until it is complete and checked;
//! writes pass untouched. The close of a refused connection writes the refusal's answer, shuts
//! the socket down, then lingers (see [`LINGER`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use actix_web::rt::time::{sleep, Sleep};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::inbound::{Inbound, State};
use super::refusal::answer;
use super::{SecurityHeaders, LINGER};

/// A connection's socket as actix-http reads it: request heads checked, over-limit ones answered.
pub struct GuardedStream<IO> {
    io: IO,
    inbound: Inbound,
    headers: SecurityHeaders,
    closing: Closing,
}

/// Where the close of a refused connection is.
enum Closing {
    /// Not closing yet (or closing a connection that refused nothing).
    Open,
    Answering { answer: Vec<u8>, written: usize },
    ShuttingDown,
    Lingering(Pin<Box<Sleep>>),
    Done,
}

impl<IO> GuardedStream<IO> {
    /// `io`, guarded; `headers` go on the answer to a refused head.
    pub fn new(io: IO, headers: SecurityHeaders) -> Self {
        Self { io, inbound: Inbound::new(), headers, closing: Closing::Open }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for GuardedStream<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.inbound.hand_over(buf) {
                return Poll::Ready(Ok(()));
            }
            let start = buf.filled().len();
            match this.inbound.state {
                // The end of the stream, as far as actix-http knows; the answer goes out at the close.
                State::Refused(_) => return Poll::Ready(Ok(())),
                State::Unguarded => return Pin::new(&mut this.io).poll_read(cx, buf),
                // A body is read straight into actix-http's buffer, cut where the next head starts.
                State::Body(remaining) => {
                    ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
                    let read = buf.filled().len() - start;
                    let body = (read as u64).min(remaining) as usize;
                    this.inbound.body_read(body as u64);
                    if read > body {
                        this.inbound.take_in(&buf.filled()[start + body..]);
                        buf.set_filled(start + body);
                    }
                    return Poll::Ready(Ok(()));
                }
                // A head is held back until it is complete (or refused).
                State::Head(_) => {
                    ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
                    if buf.filled().len() == start {
                        if !this.inbound.end_of_stream() {
                            return Poll::Ready(Ok(()));
                        }
                        continue;
                    }
                    this.inbound.take_in(&buf.filled()[start..]);
                    buf.set_filled(start);
                }
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedStream<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    /// actix-http closes after answering what came before a refused head: the refusal's answer
    /// goes out now, then the socket lingers (see [`LINGER`]).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.closing {
                Closing::Open => {
                    let State::Refused(refusal) = this.inbound.state else {
                        return Pin::new(&mut this.io).poll_shutdown(cx);
                    };
                    this.closing = Closing::Answering { answer: answer(refusal, this.headers), written: 0 };
                }
                Closing::Answering { answer, written } => {
                    while *written < answer.len() {
                        let n = ready!(Pin::new(&mut this.io).poll_write(cx, &answer[*written..]))?;
                        if n == 0 {
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                        }
                        *written += n;
                    }
                    ready!(Pin::new(&mut this.io).poll_flush(cx))?;
                    this.closing = Closing::ShuttingDown;
                }
                Closing::ShuttingDown => {
                    ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                    this.closing = Closing::Lingering(Box::pin(sleep(LINGER)));
                }
                // Closing a socket with unread bytes sends a reset, which can make the client
                // lose the answer before reading it: what the client still sends is read first.
                Closing::Lingering(deadline) => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        this.closing = Closing::Done;
                        continue;
                    }
                    let mut scratch = [0u8; 8192];
                    let mut dropped = ReadBuf::new(&mut scratch);
                    match ready!(Pin::new(&mut this.io).poll_read(cx, &mut dropped)) {
                        Ok(()) if !dropped.filled().is_empty() => {}
                        // The client closed its side (or reset): nothing more to wait for.
                        _ => this.closing = Closing::Done,
                    }
                }
                Closing::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}
