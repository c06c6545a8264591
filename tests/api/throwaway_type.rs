//! A channel type written in one file and registered with one line, as a new integration would
//! be: `echo-test` POSTs `{"greeting": <its setting>, "event": <the payload>}` with its own
//! header; its one setting is parsed once, into an [`EchoChannel`]. The browser test
//! `a_channel_type_added_in_one_file_is_offered_created_delivered_retried_and_logged` drives it
//! end to end.

use std::sync::Arc;

use serde_json::{json, Value};
use spscan_router::channels::{json_body, parse_payload, single, ChannelType, Config, Item, Prepared, Presentation, Request, Sending, Setting, Target};
use spscan_router::domain::Invalid;

pub struct Echo;

impl ChannelType for Echo {
    fn presentation(&self) -> Presentation {
        Presentation {
            name: "echo-test",
            label: "Echo (test)",
            help: "Posts each event back with a greeting: a type that exists only in the tests.",
            url_label: "Echo URL",
            url_placeholder: "https://echo.example/…",
            headers_in_form: false,
        }
    }

    fn settings(&self) -> &'static [Setting] {
        const SETTINGS: &[Setting] = &[Setting::text("greeting", "Greeting").required().help("Said first in every request.")];
        SETTINGS
    }

    fn prepare(&self, config: &Config) -> Result<Arc<dyn Prepared>, Invalid> {
        Ok(Arc::new(EchoChannel { greeting: config.get("greeting").cloned().unwrap_or_default() }))
    }
}

/// An echo channel's settings, parsed.
pub struct EchoChannel {
    greeting: Value,
}

impl Prepared for EchoChannel {
    fn request(&self, _target: &Target, items: &[Item<'_>], _sending: Sending<'_>) -> Request {
        single(json_body(&json!({ "greeting": self.greeting, "event": parse_payload(items[0].payload) })), vec![("x-echo", "1".into())])
    }
}

/// The one registry line (once per test process).
pub fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| spscan_router::channels::register(&Echo).expect("echo-test is registered once"));
}
