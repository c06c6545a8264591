//! A TCP proxy in front of PostgreSQL that can be cut (every connection closed, new ones
//! refused) and mended: the database "going away" under a running router. Used by the outage
//! test (`tests/api/outage.rs`, through `#[path]`) and by the `soak` scenario.

// Each of the two uses only part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A TCP proxy in front of PostgreSQL that the test can cut (every connection closed, new ones
/// refused) and mend.
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
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !cut.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                // As libpq and the server do: without it, Nagle's algorithm holds the second of
                // two small writes until the first is acknowledged, and a delayed ACK makes that
                // up to 40 ms per round trip (measured: the soak's backends sat "idle in
                // transaction" waiting for the client while half the CPU was idle).
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                open.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
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
            // Dropping the listener refuses new connections.
        });
    }

    /// The database "goes away": open connections are closed, new ones refused.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Wait until the port refuses.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "the proxy did not stop listening");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether it is cut now.
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// The database is back, on the same address.
    pub fn mend(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.serve(TcpListener::bind(("127.0.0.1", self.port)).unwrap());
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }
}
