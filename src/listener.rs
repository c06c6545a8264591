//! The listening sockets for `BIND_ADDR`, bound first thing at start (before the database is
//! opened or a token generated), and why one could not be, in words.

use std::io::ErrorKind;
use std::net::TcpListener;

/// A deep accept queue: bursts of ingestion connections wait instead of being dropped.
const BACKLOG: i32 = 4096;

/// Listening sockets for `bind_addr`, one per address it resolves to, made as actix-web's
/// `HttpServer::bind` makes them; an error, one line naming the address and the cause, only if
/// none could be bound.
pub fn bind(bind_addr: &str) -> anyhow::Result<Vec<TcpListener>> {
    listen(bind_addr, BACKLOG).map_err(|err| anyhow::anyhow!("BIND_ADDR: cannot listen on {bind_addr}: {}", why(&err)))
}

fn listen(bind_addr: &str, backlog: i32) -> std::io::Result<Vec<TcpListener>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (mut listeners, mut error) = (Vec::new(), None);
    for addr in std::net::ToSocketAddrs::to_socket_addrs(bind_addr)? {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .and_then(|socket| socket.set_reuse_address(true).map(|()| socket))
            .and_then(|socket| socket.bind(&addr.into()).map(|()| socket))
            .and_then(|socket| socket.listen(backlog).map(|()| socket));
        match socket {
            Ok(socket) => listeners.push(socket.into()),
            Err(err) => error = Some(err),
        }
    }
    match error {
        Some(err) if listeners.is_empty() => Err(err),
        _ if listeners.is_empty() => Err(std::io::Error::other("the address resolves to nothing")),
        _ => Ok(listeners),
    }
}

/// Why a socket could not be bound, in words, with what to do.
fn why(err: &std::io::Error) -> String {
    match err.kind() {
        ErrorKind::AddrInUse => "the address is already in use (another process listens there: stop it, or set BIND_ADDR to another port)".into(),
        ErrorKind::PermissionDenied => "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE: choose a port above 1023)".into(),
        ErrorKind::AddrNotAvailable => "this machine has no such address (use 127.0.0.1, 0.0.0.0 or one of its own addresses)".into(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_in_use_is_named_with_the_cause() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let err = bind(&addr).unwrap_err().to_string();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("BIND_ADDR: cannot listen on {addr}: the address is already in use")), "{err}");
        let err = bind("192.0.2.1:8080").unwrap_err().to_string();
        assert!(err.contains("this machine has no such address"), "{err}");
    }
}
