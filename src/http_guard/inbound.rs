//! What a connection's inbound bytes are (a head arriving, a body, untouched, refused) and which
//! of them actix-http may have: [`Inbound`] takes in what is read from the socket, checks each
//! head against the limits as it arrives, and releases a head only once it is complete; the
//! `Content-Length` of a complete head says where the next one starts. Pure bookkeeping, no I/O,
//! so the tests feed it bytes in any split.

use actix_web::ResponseError;
use tokio::io::ReadBuf;

use super::refusal::Refusal;
use super::{MAX_HEAD, MAX_HEADER_FIELDS, MAX_REQUEST_LINE};

/// What a connection's inbound bytes are, and which of them actix-http may have.
pub(super) struct Inbound {
    pub(super) state: State,
    /// Bytes read from the socket that actix-http has not had: `[handed..released]` passed the
    /// checks, `[released..]` is the start of a head still arriving.
    buffer: Vec<u8>,
    handed: usize,
    released: usize,
}

/// Where the inbound stream is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum State {
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
pub(super) struct HeadScan {
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
    pub(super) fn new() -> Self {
        Self { state: State::Head(HeadScan::default()), buffer: Vec::new(), handed: 0, released: 0 }
    }

    /// Copies what passed the checks into `buf`; false if there is nothing to copy.
    pub(super) fn hand_over(&mut self, buf: &mut ReadBuf<'_>) -> bool {
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
    pub(super) fn body_read(&mut self, n: u64) {
        if let State::Body(remaining) = &mut self.state {
            *remaining -= n;
            if *remaining == 0 {
                self.state = State::Head(HeadScan::default());
            }
        }
    }

    /// The client closed its side: a head still arriving goes to actix-http as it is (it has its
    /// own answer to a cut-off head). True if there are bytes to hand over.
    pub(super) fn end_of_stream(&mut self) -> bool {
        if matches!(self.state, State::Head(_)) {
            self.state = State::Unguarded;
            self.released = self.buffer.len();
        }
        self.released > self.handed
    }

    /// Bytes just read from the socket.
    pub(super) fn take_in(&mut self, bytes: &[u8]) {
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
}
