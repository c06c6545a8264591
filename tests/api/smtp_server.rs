//! A real SMTP server on 127.0.0.1 for the email tests (RFC 5321 as far as the router uses it):
//! `EHLO`, `STARTTLS` (or TLS from the first byte) with a certificate of a test CA made at start (`rcgen`), `AUTH PLAIN`,
//! `LOGIN` and `XOAUTH2`, `MAIL`, `RCPT`, `DATA`, `RSET`, `NOOP` and `QUIT`. It keeps every
//! message it accepted, with its envelope, whether it came over TLS and who signed in; its
//! replies can be scripted (the end of `DATA`, a recipient, the sign-in), like the capture
//! receiver's answers. It runs on a thread of its own, with its own runtime.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// The name the test certificate is for (tests resolve it to 127.0.0.1).
pub const SMTP_HOST: &str = "smtp.test";

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as it came (after dot-unstuffing), CRLF line ends.
    pub data: String,
    pub tls: bool,
    /// (mechanism, user, secret) of the sign-in, if any.
    pub auth: Option<(String, String, String)>,
}

impl ReceivedMail {
    /// The value of a top-level header (unfolded, RFC 2047 encoded words decoded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| decode_words(v.trim()))
        })
    }

    /// The decoded body of each part: (content type, text).
    pub fn parts(&self) -> Vec<(String, String)> {
        let content_type = self.header("Content-Type").unwrap_or_default();
        let Some(boundary) = content_type.split("boundary=").nth(1).map(|b| b.trim_matches('"').to_string()) else { return Vec::new() };
        let body = self.data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        body.split(&format!("--{boundary}"))
            .filter_map(|part| {
                let part = part.strip_prefix("\r\n")?;
                let (head, content) = part.split_once("\r\n\r\n")?;
                let header = |name: &str| head.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()));
                let kind = header("Content-Type")?.split(';').next().unwrap_or_default().to_string();
                let content = content.trim_end_matches("\r\n");
                let text = match header("Content-Transfer-Encoding").as_deref() {
                    Some("base64") => String::from_utf8(base64::engine::general_purpose::STANDARD.decode(content.replace("\r\n", "")).ok()?).ok()?,
                    Some("quoted-printable") => quoted_printable(content),
                    _ => content.to_string(),
                };
                Some((kind, text))
            })
            .collect()
    }

    pub fn part(&self, kind: &str) -> String {
        self.parts().into_iter().find(|(k, _)| k == kind).map(|(_, t)| t).unwrap_or_else(|| panic!("no {kind} part in {}", self.data))
    }
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?w5c=?=`); the space between two of them is dropped.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut previous_encoded = false;
    for (i, token) in value.split(' ').enumerate() {
        let decoded = token.strip_prefix("=?").and_then(|t| t.strip_suffix("?=")).and_then(|inner| {
            let mut parts = inner.splitn(3, '?');
            let (_charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
            match encoding.to_ascii_lowercase().as_str() {
                "b" => String::from_utf8(base64::engine::general_purpose::STANDARD.decode(text).ok()?).ok(),
                "q" => Some(quoted_printable(&text.replace('_', " "))),
                _ => None,
            }
        });
        if i > 0 && !(previous_encoded && decoded.is_some()) {
            out.push(' ');
        }
        previous_encoded = decoded.is_some();
        out.push_str(&decoded.unwrap_or_else(|| token.to_string()));
    }
    out
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Default)]
struct State {
    received: Vec<ReceivedMail>,
    /// Replies to the end of `DATA`, used in turn; then `250`.
    data_replies: VecDeque<String>,
    /// Recipients refused, with the reply.
    refused: HashMap<String, String>,
    /// The reply to every sign-in (`None`: `235`).
    auth_reply: Option<String>,
    /// Every sign-in tried: (mechanism, user).
    sign_ins: Vec<(String, String)>,
    connections: usize,
}

/// A running SMTP server.
#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    /// The test CA's certificate (PEM), to be trusted by the router.
    pub ca_pem: String,
    state: Arc<Mutex<State>>,
}

impl SmtpServer {
    /// Starts a server offering `STARTTLS` with a certificate for [`SMTP_HOST`].
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a server that speaks TLS from the first byte (as on port 465).
    pub fn start_implicit() -> Self {
        Self::start_with(true)
    }

    fn start_with(implicit: bool) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "SPScan test mail CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec![SMTP_HOST.to_string()]).unwrap().signed_by(&leaf_key, &ca, &ca_key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())))
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((socket, _)) = listener.accept().await else { continue };
                    shared.lock().unwrap().connections += 1;
                    let (state, acceptor) = (Arc::clone(&shared), acceptor.clone());
                    tokio::spawn(async move {
                        let _ = serve(socket, state, acceptor, implicit).await;
                    });
                }
            });
        });
        Self { port, ca_pem: ca.pem(), state }
    }

    /// The next replies to the end of `DATA` (`451 4.7.1 Try again later`), in turn.
    pub fn script_data(&self, replies: &[&str]) {
        self.state.lock().unwrap().data_replies.extend(replies.iter().map(|r| r.to_string()));
    }

    /// Refuses a recipient with `reply` (`550 5.1.1 User unknown`).
    pub fn refuse_recipient(&self, address: &str, reply: &str) {
        self.state.lock().unwrap().refused.insert(address.to_string(), reply.to_string());
    }

    /// Answers every sign-in with `reply` (`535 5.7.8 Authentication credentials invalid`).
    pub fn refuse_auth(&self, reply: &str) {
        self.state.lock().unwrap().auth_reply = Some(reply.to_string());
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.state.lock().unwrap().received.clone()
    }

    /// Every sign-in tried: (mechanism, user).
    pub fn signed_in(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().sign_ins.clone()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Waits until `count` messages were accepted.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(Instant::now() < deadline, "{count} message(s) did not arrive within {within:?}; got {}", received.len());
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One session, from the greeting to `QUIT`.
async fn serve(socket: tokio::net::TcpStream, state: Arc<Mutex<State>>, acceptor: tokio_rustls::TlsAcceptor, implicit: bool) -> std::io::Result<()> {
    let mut stream: BufReader<Box<dyn Stream>> =
        if implicit { BufReader::new(Box::new(acceptor.accept(socket).await?)) } else { BufReader::new(Box::new(socket)) };
    let mut tls = implicit;
    stream.get_mut().write_all(b"220 smtp.test ESMTP ready\r\n").await?;
    let (mut from, mut to, mut auth) = (String::new(), Vec::<String>::new(), None);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_string();
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let starttls = if tls { "" } else { "250-STARTTLS\r\n" };
            format!("250-smtp.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n{starttls}250 AUTH PLAIN LOGIN XOAUTH2\r\n")
        } else if upper == "STARTTLS" && !tls {
            stream.get_mut().write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
            let plain = stream.into_inner();
            let encrypted = acceptor.accept(plain).await?;
            stream = BufReader::new(Box::new(encrypted));
            tls = true;
            continue;
        } else if let Some(rest) = upper.strip_prefix("AUTH ") {
            let argument = line[5..].split_whitespace().nth(1).unwrap_or_default().to_string();
            let decoded = String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(&argument).unwrap_or_default()).into_owned();
            let signed_in = if rest.starts_with("PLAIN") {
                let mut fields = decoded.split('\0').skip(1);
                Some(("PLAIN".to_string(), fields.next().unwrap_or_default().to_string(), fields.next().unwrap_or_default().to_string()))
            } else if rest.starts_with("XOAUTH2") {
                let user = decoded.split('\x01').find_map(|f| f.strip_prefix("user=")).unwrap_or_default().to_string();
                let token = decoded.split('\x01').find_map(|f| f.strip_prefix("auth=Bearer ")).unwrap_or_default().to_string();
                Some(("XOAUTH2".to_string(), user, token))
            } else {
                None
            };
            if let Some((mechanism, user, _)) = &signed_in {
                state.lock().unwrap().sign_ins.push((mechanism.clone(), user.clone()));
            }
            match (signed_in, state.lock().unwrap().auth_reply.clone()) {
                (None, _) => "504 5.5.4 Unrecognized authentication type\r\n".to_string(),
                (Some(_), Some(refusal)) => format!("{refusal}\r\n"),
                (Some(who), None) => {
                    auth = Some(who);
                    "235 2.7.0 Authentication successful\r\n".to_string()
                }
            }
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&line);
            to.clear();
            "250 2.1.0 Sender OK\r\n".to_string()
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = address(&line);
            match state.lock().unwrap().refused.get(&rcpt).cloned() {
                Some(refusal) => format!("{refusal}\r\n"),
                None => {
                    to.push(rcpt);
                    "250 2.1.5 Recipient OK\r\n".to_string()
                }
            }
        } else if upper == "DATA" {
            stream.get_mut().write_all(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                let mut line = String::new();
                if stream.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let mut state = state.lock().unwrap();
            let reply = state.data_replies.pop_front().unwrap_or_else(|| "250 2.0.0 OK queued".to_string());
            if reply.starts_with('2') {
                state.received.push(ReceivedMail { from: from.clone(), to: to.clone(), data, tls, auth: auth.clone() });
            }
            format!("{reply}\r\n")
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 OK\r\n".to_string()
        } else if upper == "QUIT" {
            stream.get_mut().write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 Command not recognized\r\n".to_string()
        };
        stream.get_mut().write_all(reply.as_bytes()).await?;
        stream.get_mut().flush().await?;
    }
}

/// The address in `MAIL FROM:<a@b> …` or `RCPT TO:<a@b>`.
fn address(line: &str) -> String {
    line.split_once('<').and_then(|(_, rest)| rest.split_once('>')).map(|(a, _)| a.to_string()).unwrap_or_default()
}
