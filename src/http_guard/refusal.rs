//! Why a request head was refused, and the router's answer to it: the problem `error.rs` renders
//! for the status (`414` or `431`), written out whole as HTTP/1.1 bytes with the security headers
//! and `Connection: close`, since actix-http never sees the request it answers.

use std::time::SystemTime;

use actix_web::body::MessageBody;
use actix_web::ResponseError;

use super::{SecurityHeaders, MAX_HEAD, MAX_HEADER_FIELDS, MAX_REQUEST_LINE};
use crate::error::ApiError;

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    RequestLineTooLong,
    HeadTooLarge,
    TooManyFields,
}

impl Refusal {
    /// The API error the refusal is answered with.
    pub(super) fn error(self) -> ApiError {
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
pub(super) fn answer(refusal: Refusal, headers: SecurityHeaders) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
