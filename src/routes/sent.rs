//! What an attempt sent, as `GET /api/v1/deliveries/{id}` shows it with each attempt: the
//! request (method, URL, headers, body) exactly as it went out, credentials masked when it was
//! recorded (`outbound::shown`), and the answer's headers.

use serde::Serialize;

use crate::outbound::shown::{head, BODY_KEPT};
use crate::store::models::SentRequestRow;

/// One header.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SentHeader)]
pub struct HeaderView {
    name: String,
    value: String,
}

/// The request an attempt sent, credentials masked (`••••` and at most the last four
/// characters): a Slack or Teams URL's path, `Authorization`, the channel's custom header
/// values, credential-looking query parameters. The Standard Webhooks headers are shown as sent.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SentRequest)]
pub struct SentView {
    method: String,
    url: String,
    headers: Vec<HeaderView>,
    /// The body as sent (the channel type's own: Slack Block Kit, a Teams card, a Splunk HEC
    /// batch, Sentinel records, the signed webhook JSON); its first 65,536 bytes.
    body: String,
    /// How many bytes the body had in all.
    body_bytes: i64,
    /// `true`: `body` holds only the first 65,536 of `body_bytes` bytes.
    body_truncated: bool,
    /// The answer's headers (the first 64); `null`: no answer came.
    response_headers: Option<Vec<HeaderView>>,
}

fn headers(json: &str) -> Vec<HeaderView> {
    serde_json::from_str::<Vec<(String, String)>>(json).unwrap_or_default().into_iter().map(|(name, value)| HeaderView { name, value }).collect()
}

impl SentView {
    /// The view of a stored request; `payload` is the delivery's payload as stored, the body of a
    /// request that sent it as it is.
    pub fn new(row: SentRequestRow, payload: &str) -> Self {
        let body = row.body.unwrap_or_else(|| head(payload, BODY_KEPT).to_string());
        Self {
            method: row.method,
            url: row.url,
            headers: headers(&row.headers),
            body_truncated: (body.len() as i64) < row.body_bytes,
            body,
            body_bytes: row.body_bytes,
            response_headers: row.answer_headers.as_deref().map(headers),
        }
    }
}
