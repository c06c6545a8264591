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

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use actix_service::{fn_service, ServiceFactory, ServiceFactoryExt};
use actix_web::body::MessageBody;
use actix_web::rt::net::TcpStream;
use actix_web::rt::time::{sleep, Sleep};
use actix_web::ResponseError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;

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

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    RequestLineTooLong,
    HeadTooLarge,
    TooManyFields,
}

impl Refusal {
    fn error(self) -> ApiError {
        match self {
            Refusal::RequestLineTooLong => ApiError::UriTooLong(format!(
                "the request line is longer than {MAX_REQUEST_LINE} bytes; shorten the URL (fewer or shorter query parameters per request)"
            )),
            Refusal::HeadTooLarge => ApiError::HeadersTooLarge(format!(
                "the request head (request line and header fields) is larger than {MAX_HEAD} bytes; send fewer or shorter headers"
            )),
            Refusal::TooManyFields => {
                ApiError::HeadersTooLarge(format!("the request has more than {MAX_HEADER_FIELDS} header fields; send fewer headers"))
            }
        }
    }
}

/// The complete HTTP/1.1 answer to a refused head: the problem `error.rs` renders, the security
/// headers, `Connection: close`.
fn answer(refusal: Refusal, headers: SecurityHeaders) -> Vec<u8> {
    let response = refusal.error().error_response();
    let status = response.status();
    let mut out = format!("HTTP/1.1 {} {}\r\n", status.as_str(), status.canonical_reason().unwrap_or("Error")).into_bytes();
    for (name, value) in response.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    let body = response.into_body().try_into_bytes().unwrap_or_default();
    let date = httpdate::fmt_http_date(SystemTime::now());
    out.extend_from_slice(format!("connection: close\r\ndate: {date}\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
    out
}

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

/// What a connection's inbound bytes are, and which of them actix-http may have.
struct Inbound {
    state: State,
    /// Bytes read from the socket that actix-http has not had: `[handed..released]` passed the
    /// checks, `[released..]` is the start of a head still arriving.
    buffer: Vec<u8>,
    handed: usize,
    released: usize,
}

/// Where the inbound stream is.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// A request head is arriving.
    Head(HeadScan),
    /// The body of the last head: this many bytes are still to come (never 0).
    Body(u64),
    /// The stream is no longer followed; bytes pass untouched.
    Unguarded,
    /// A head over a limit: nothing more is handed over.
    Refused(Refusal),
}

/// How far the head arriving has been checked; offsets from its first byte.
#[derive(Debug, Default, PartialEq, Eq)]
struct HeadScan {
    scanned: usize,
    line_start: usize,
    /// Lines seen so far, the request line first (empty lines ahead of it are skipped, as
    /// actix-http does).
    lines: usize,
}

enum Scanned {
    Incomplete,
    /// The head is complete: it is this many bytes long.
    Complete(usize),
    Refused(Refusal),
}

/// A bigger buffer is let go once it is empty, so an idle kept-alive connection holds little.
const KEPT_CAPACITY: usize = 16 * 1024;

impl Inbound {
    fn new() -> Self {
        Self { state: State::Head(HeadScan::default()), buffer: Vec::new(), handed: 0, released: 0 }
    }

    /// Copies what passed the checks into `buf`; false if there is nothing to copy.
    fn hand_over(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let n = (self.released - self.handed).min(buf.remaining());
        if n == 0 {
            return false;
        }
        buf.put_slice(&self.buffer[self.handed..self.handed + n]);
        self.handed += n;
        if self.handed == self.released {
            self.buffer.drain(..self.handed);
            (self.handed, self.released) = (0, 0);
            if self.buffer.is_empty() && self.buffer.capacity() > KEPT_CAPACITY {
                self.buffer = Vec::new();
            }
        }
        true
    }

    /// `n` bytes of the current body went to actix-http directly.
    fn body_read(&mut self, n: u64) {
        if let State::Body(remaining) = &mut self.state {
            *remaining -= n;
            if *remaining == 0 {
                self.state = State::Head(HeadScan::default());
            }
        }
    }

    /// The client closed its side: a head still arriving goes to actix-http as it is (it has its
    /// own answer to a cut-off head). True if there are bytes to hand over.
    fn end_of_stream(&mut self) -> bool {
        if matches!(self.state, State::Head(_)) {
            self.state = State::Unguarded;
            self.released = self.buffer.len();
        }
        self.released > self.handed
    }

    /// Bytes just read from the socket.
    fn take_in(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        loop {
            let unchecked = &self.buffer[self.released..];
            if unchecked.is_empty() {
                return;
            }
            match &mut self.state {
                State::Unguarded => {
                    self.released = self.buffer.len();
                    return;
                }
                State::Refused(_) => {
                    self.buffer.truncate(self.released);
                    return;
                }
                State::Body(remaining) => {
                    let n = (*remaining).min(unchecked.len() as u64);
                    self.released += n as usize;
                    self.body_read(n);
                }
                State::Head(scan) => match scan.advance(unchecked) {
                    Scanned::Incomplete => return,
                    Scanned::Complete(len) => {
                        self.state = after_head(&unchecked[..len]);
                        self.released += len;
                    }
                    Scanned::Refused(refusal) => {
                        log::debug!("refused a request head ({refusal:?}); answering {}", refusal.error().status_code());
                        self.state = State::Refused(refusal);
                        self.buffer.truncate(self.released);
                        return;
                    }
                },
            }
        }
    }
}

impl HeadScan {
    /// Checks the bytes of `head` not checked yet (`head` starts at the head's first byte).
    fn advance(&mut self, head: &[u8]) -> Scanned {
        while let Some(at) = head[self.scanned..].iter().position(|&b| b == b'\n') {
            let end = self.scanned + at + 1;
            let line = trim_cr(&head[self.line_start..end - 1]);
            (self.scanned, self.line_start) = (end, end);
            if line.is_empty() {
                if self.lines > 0 {
                    return if end > MAX_HEAD { Scanned::Refused(Refusal::HeadTooLarge) } else { Scanned::Complete(end) };
                }
            } else {
                if self.lines == 0 && line.len() > MAX_REQUEST_LINE {
                    return Scanned::Refused(Refusal::RequestLineTooLong);
                }
                self.lines += 1;
                if self.lines > MAX_HEADER_FIELDS + 1 {
                    return Scanned::Refused(Refusal::TooManyFields);
                }
            }
            if end > MAX_HEAD {
                return Scanned::Refused(Refusal::HeadTooLarge);
            }
        }
        self.scanned = head.len();
        if self.lines == 0 && trim_cr(&head[self.line_start..]).len() > MAX_REQUEST_LINE {
            return Scanned::Refused(Refusal::RequestLineTooLong);
        }
        if head.len() > MAX_HEAD {
            return Scanned::Refused(Refusal::HeadTooLarge);
        }
        Scanned::Incomplete
    }
}

/// What follows a complete head: its body (by `Content-Length`), the next head, or, when the
/// length is not plain, nothing the guard follows any more.
fn after_head(head: &[u8]) -> State {
    let mut lines = head.split(|&b| b == b'\n').map(trim_cr).filter(|line| !line.is_empty());
    if lines.next().is_some_and(|request_line| request_line.starts_with(b"CONNECT ")) {
        return State::Unguarded;
    }
    let mut length: Option<u64> = None;
    for field in lines {
        // A line without a colon is refused by actix-http, which then closes the connection.
        let Some(colon) = field.iter().position(|&b| b == b':') else { continue };
        let (name, value) = (&field[..colon], field[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"transfer-encoding") || name.eq_ignore_ascii_case(b"upgrade") {
            return State::Unguarded;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let plain = !value.is_empty() && value.iter().all(u8::is_ascii_digit);
            let parsed = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            match (length, plain, parsed) {
                (None, true, Some(n)) => length = Some(n),
                _ => return State::Unguarded,
            }
        }
    }
    match length {
        Some(n) if n > 0 => State::Body(n),
        _ => State::Head(HeadScan::default()),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes, handing everything over as actix-http would read
    /// it; returns what actix-http got and the final state.
    fn run(input: &[u8], step: usize) -> (Vec<u8>, State) {
        let mut inbound = Inbound::new();
        let mut got = Vec::new();
        for piece in input.chunks(step) {
            match inbound.state {
                // Bodies go straight through, cut at their end.
                State::Body(remaining) => {
                    let body = (piece.len() as u64).min(remaining) as usize;
                    got.extend_from_slice(&piece[..body]);
                    inbound.body_read(body as u64);
                    inbound.take_in(&piece[body..]);
                }
                _ => inbound.take_in(piece),
            }
            let mut space = [0u8; 64 * 1024];
            let mut buf = ReadBuf::new(&mut space);
            while inbound.hand_over(&mut buf) {
                got.extend_from_slice(buf.filled());
                buf.clear();
            }
        }
        (got, inbound.state)
    }

    fn post(body: &str) -> String {
        format!("POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len())
    }

    #[test]
    fn kept_alive_requests_pass_whole_however_they_are_split() {
        let input = format!("{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n{}\r\nGET / HTTP/1.1\nHost: x\n\n", post("{\"a\":1}"), post(""));
        for step in [1, 2, 3, 7, 64, input.len()] {
            let (got, state) = run(input.as_bytes(), step);
            assert_eq!(String::from_utf8(got).unwrap(), input, "in pieces of {step}");
            assert_eq!(state, State::Head(HeadScan::default()), "in pieces of {step}");
        }
    }

    #[test]
    fn a_head_still_arriving_is_held_back() {
        let (got, state) = run(b"GET /healthz HTTP/1.1\r\nHost: x\r\n", 5);
        assert!(got.is_empty());
        assert!(matches!(state, State::Head(_)));
    }

    #[test]
    fn an_over_long_request_line_is_refused_and_nothing_of_it_handed_over() {
        let first = post("{}");
        let input = format!("{first}GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
        for step in [1000, 16 * 1024, input.len()] {
            let (got, state) = run(input.as_bytes(), step);
            assert_eq!(String::from_utf8(got).unwrap(), first, "in pieces of {step}");
            assert_eq!(state, State::Refused(Refusal::RequestLineTooLong), "in pieces of {step}");
        }
        let longest = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(MAX_REQUEST_LINE - 14));
        assert_eq!(run(longest.as_bytes(), 1000).0, longest.as_bytes(), "a request line of exactly the limit passes");
    }

    #[test]
    fn an_over_large_or_over_long_head_is_refused() {
        let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(200_000));
        assert_eq!(run(big.as_bytes(), 4096).1, State::Refused(Refusal::HeadTooLarge));
        let many: String = (0..MAX_HEADER_FIELDS).map(|i| format!("X-{i}: v\r\n")).collect();
        let at_limit = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(run(at_limit.as_bytes(), 100).1, State::Head(HeadScan::default()), "{MAX_HEADER_FIELDS} fields pass");
        let over = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert_eq!(run(over.as_bytes(), 100).1, State::Refused(Refusal::TooManyFields));
        let blank_lines = "\r\n".repeat(40_000);
        assert_eq!(run(blank_lines.as_bytes(), 4096).1, State::Refused(Refusal::HeadTooLarge));
    }

    #[test]
    fn unclear_lengths_end_the_guarding() {
        for head in [
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            let input = format!("{head}{}", "z".repeat(100_000));
            let (got, state) = run(input.as_bytes(), 4096);
            assert_eq!(state, State::Unguarded, "{head}");
            assert_eq!(got.len(), input.len(), "{head}: everything passes");
        }
    }

    #[test]
    fn the_openapi_document_states_the_limits_applied() {
        let about = crate::routes::openapi::build().info.description.unwrap_or_default();
        for limit in [MAX_REQUEST_LINE, MAX_HEAD, MAX_HEADER_FIELDS] {
            assert!(about.contains(&limit.to_string()), "{limit} in {about}");
        }
    }

    #[test]
    fn the_answers_are_problems_with_the_security_headers_and_a_close() {
        let uri_too_long = String::from_utf8(answer(Refusal::RequestLineTooLong, &[("X-Frame-Options", "DENY")])).unwrap();
        let (head, body) = uri_too_long.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        for line in ["content-type: application/problem+json", "X-Frame-Options: DENY", "connection: close", &format!("content-length: {}", body.len())] {
            assert!(head.lines().any(|l| l == line), "{line} in {head}");
        }
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["type"], "urn:spscan-router:problem:uri-too-long");
        assert_eq!(problem["status"], 414);
        assert!(problem["detail"].as_str().unwrap().contains("16384"), "{problem}");
        let too_large = String::from_utf8(answer(Refusal::HeadTooLarge, &[])).unwrap();
        assert!(too_large.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{too_large}");
    }
}
