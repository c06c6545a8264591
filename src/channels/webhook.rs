//! `webhook`: the section 4 payload as it is, signed the Standard Webhooks way (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature`). It takes no settings; the answer is judged as plain
//! HTTP.

use std::sync::Arc;

use actix_web::web::Bytes;

use super::{single, ChannelType, Config, Item, Prepared, Presentation, Request, Sending, Target};
use crate::domain::signature;
use crate::domain::Invalid;

pub struct Webhook;

impl ChannelType for Webhook {
    fn presentation(&self) -> Presentation {
        Presentation {
            name: "webhook",
            label: "Webhook",
            help: "Where alerts are POSTed, signed (Standard Webhooks). Loopback and private addresses need ALLOWED_TARGET_NETWORKS.",
            url_label: "URL",
            url_placeholder: "https://…",
            headers_in_form: true,
        }
    }

    fn signs(&self) -> bool {
        true
    }

    fn prepare(&self, _config: &Config) -> Result<Arc<dyn Prepared>, Invalid> {
        Ok(Arc::new(Webhook))
    }
}

impl Prepared for Webhook {
    fn request(&self, target: &Target, items: &[Item<'_>], sending: Sending<'_>) -> Request {
        let now = sending.now;
        let Item { msg_id, payload, .. } = items[0];
        let timestamp = now / 1000;
        let signature = signature::sign(&target.signing_secrets(now), msg_id, timestamp, payload);
        single(
            Bytes::clone(payload),
            vec![
                ("webhook-id", msg_id.to_string()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ],
        )
    }
}
