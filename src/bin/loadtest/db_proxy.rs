//! A TCP proxy in front of PostgreSQL that can be cut (every connection closed, new ones closed
//! as soon as they are accepted) and mended: the database "going away" under a running router.
//! Used by the outage test (`tests/api/outage.rs`, through `#[path]`) and by the `soak` scenario.
//!
//! It keeps its port for its whole life: a port let go while cut can be taken by anything else
//! on the machine (a client's ephemeral port, another test's listener) before the proxy binds it
//! again (seen in CI: `AddrInUse` on mending).

// Each of the two uses only part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A TCP proxy in front of PostgreSQL that the test can cut (every connection closed, new ones
/// closed at once) and mend.
pub struct DbProxy {
    port: u16,
    upstream: String,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl DbProxy {
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self { port, upstream: upstream.to_string(), cut: Arc::new(AtomicBool::new(false)), open: Arc::default() };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, cut, open) = (self.upstream.clone(), self.cut.clone(), self.open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                // Cut: closed at once, as a server that is gone would (the client reads the end
                // of the stream before anything of the server's).
                if cut.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                // As libpq and the server do: without it, Nagle's algorithm holds the second of
                // two small writes until the first is acknowledged, and a delayed ACK makes that
                // up to 40 ms per round trip (measured: the soak's backends sat "idle in
                // transaction" waiting for the client while half the CPU was idle).
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    // Checked again under the lock `cut` drains with: a connection made while
                    // the cut began is closed by one or the other, never left open.
                    let mut open = open.lock().unwrap();
                    if cut.load(Ordering::SeqCst) {
                        continue;
                    }
                    open.extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                }
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buffer) {
                            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
    }

    /// The database "goes away": open connections are closed, new ones closed at once.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Whether it is cut now.
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// The database is back, on the same address.
    pub fn mend(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }
}
