//! The router's own answer to request heads it will not read, given before actix-http sees them.
//!
//! actix-http answers a request line longer than 65,534 bytes with a bare `400` and a head over
//! 128 KiB with a bare `431`, before any route or middleware runs. So every connection is served
//! through a [`GuardedStream`]: it reads the socket for actix-http and checks each request head as
//! it arrives, holding the head back until it is complete. A head over a limit
//! ([`MAX_REQUEST_LINE`] → `414`, [`MAX_HEAD`] or [`MAX_HEADER_FIELDS`] → `431`) is never handed
//! over: actix-http reads the end of the stream instead, answers the requests that came before
//! it, and closes the connection; the close writes the router's problem+json answer (rendered by
//! `error.rs`, with `Connection: close` and the security headers), then reads and drops what the
//! client still sends for up to [`LINGER`], so that the client reads the answer, not a reset.
//!
//! Invariants and what is left out:
//! - The limits are below actix-http's, so on a guarded connection the router's answer always wins.
//! - The next request's head starts where the body its `Content-Length` announces ends. A request
//!   that is chunked (any `Transfer-Encoding`), asks for an upgrade (`Upgrade`, `CONNECT`), or
//!   whose length is unclear (two `Content-Length`s, one that is not a plain number) ends the
//!   guarding of its connection: what follows passes untouched, under actix-http's own limits
//!   (its bare `400` and `431`).
//! - A head is handed over only once complete, so actix-http's keep-alive timer (not its head
//!   timer) bounds how long a later request's head may take to arrive.
//! - A request pipelined directly ahead of a refused one is answered first. If its body is over
//!   32 KiB and its handler has not read it all when the stream ends, actix-http fails that body
//!   as incomplete (its half-close handling); a client that waits for each answer never sees this.
//!
//! The pieces: [`GuardedStream`] (`stream.rs`) is the socket actix-http reads and the close that
//! answers; `inbound.rs` follows the inbound bytes (heads, bodies) and decides what may be handed
//! over; `refusal.rs` is why a head was refused and the bytes of the answer.

mod inbound;
mod refusal;
mod stream;

use std::net::SocketAddr;
use std::time::Duration;

use actix_service::{fn_service, ServiceFactory, ServiceFactoryExt};
use actix_web::rt::net::TcpStream;

pub use stream::GuardedStream;

/// The longest request line (method, path and query, version) the router reads: 16 KiB. A longer
/// one is answered `414`.
pub const MAX_REQUEST_LINE: usize = 16 * 1024;

/// The largest request head (request line and header fields) the router reads: 64 KiB. A larger
/// one is answered `431`.
pub const MAX_HEAD: usize = 64 * 1024;

/// The most header fields a request may have: actix-http's own limit, answered `431` here rather
/// than with its bare `400`.
pub const MAX_HEADER_FIELDS: usize = 96;

/// How long a refused connection goes on reading, and dropping, what the client still sends.
pub const LINGER: Duration = Duration::from_secs(1);

/// Headers added to every answer given here, as the router's middleware adds them to the others.
pub type SecurityHeaders = &'static [(&'static str, &'static str)];

/// Serves each TCP connection to `h1` (actix-http's HTTP/1 service) through a [`GuardedStream`].
pub fn guarded<F>(
    h1: F,
    headers: SecurityHeaders,
) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = F::Error, InitError = ()>
where
    F: ServiceFactory<(GuardedStream<TcpStream>, Option<SocketAddr>), Config = (), Response = (), InitError = ()>,
{
    fn_service(move |io: TcpStream| {
        let peer = io.peer_addr().ok();
        std::future::ready(Ok::<_, F::Error>((GuardedStream::new(io, headers), peer)))
    })
    .and_then(h1)
}
