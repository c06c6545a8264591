//! What **Test** (`POST /api/v1/channels/{id}/test`) sends: the sample event (SPEC section 5),
//! or with `{"sample":"group"}` a sample notification (section 16: three sample events of one
//! site, the body marked `"test": true`), through the channel's type like any delivery. The body
//! is optional (the admin page sends none); an unknown `sample` is refused naming `sample`.

use actix_web::web::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::notification::{self, ID_PREFIX};
use crate::domain::time::now_ms;
use crate::domain::{ids, payload, Invalid};
use crate::error::ApiError;

/// What a Test press may ask for.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"sample": "group"}))]
pub struct TestInput {
    /// `event` (the default): one sample event; `group`: a sample notification of three events
    /// (the `alert.group` body for a webhook, the summary message for Slack and Teams).
    #[allow(dead_code)]
    sample: Option<String>,
    /// Ticketing channels (SPEC section 17): `true` creates a `[SPScan TEST]` ticket outside the
    /// incident map; without it, Test only checks the credentials, the project, table, board or
    /// queue and every mapped company, creating nothing.
    #[allow(dead_code)]
    create: Option<bool>,
}

/// The sample a Test sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    Event,
    Group,
}

impl Sample {
    /// The sample asked for in a Test's body, and whether a ticketing channel's Test is to
    /// create a ticket (`"create": true`).
    pub fn asked(body: &[u8]) -> Result<(Self, bool), ApiError> {
        // No body at all is the sample event; anything else must be a JSON object (a body of
        // only white space is no JSON, and is refused like any unreadable body).
        if body.is_empty() {
            return Ok((Sample::Event, false));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(ApiError::BadRequest("the body must be a JSON object such as {\"sample\":\"group\"}, or empty".into()));
        };
        let create = match fields.get("create") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(create)) => *create,
            Some(_) => return Err(Invalid::new("create", "must be true or false").into()),
        };
        Ok((Self::of(&fields)?, create))
    }

    fn of(fields: &Map<String, Value>) -> Result<Self, Invalid> {
        if let Some(unknown) = fields.keys().find(|k| *k != "sample" && *k != "create") {
            return Err(Invalid::new(crate::domain::tenant::clip(unknown), "is not a field of a Test; it takes `sample` (\"event\" or \"group\") and, for a ticketing channel, `create`"));
        }
        match fields.get("sample") {
            None | Some(Value::Null) => Ok(Sample::Event),
            Some(Value::String(s)) if s == "event" => Ok(Sample::Event),
            Some(Value::String(s)) if s == "group" => Ok(Sample::Group),
            Some(Value::String(s)) => Err(Invalid::new("sample", format!("`{}` is not a sample; use \"event\" or \"group\"", crate::domain::tenant::clip(s)))),
            Some(_) => Err(Invalid::new("sample", "must be \"event\" or \"group\"")),
        }
    }

    /// A new sample: its message id (the event's id, or the notification's `grp_…`) and its body.
    pub fn render(self) -> (String, Bytes) {
        match self {
            Sample::Event => {
                let event_id = ids::new_id(ids::EVENT);
                let body = Bytes::from(payload::render_test(&event_id));
                (event_id, body)
            }
            Sample::Group => {
                let event_id = ids::new_id(ID_PREFIX);
                let body = Bytes::from(notification::render_test(&event_id, now_ms() / 1000 * 1000));
                (event_id, body)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_asks_for_the_event_by_default_and_for_a_group_by_name() {
        for body in ["", "{}", " {} ", r#"{"sample":null}"#, r#"{"sample":"event"}"#] {
            assert_eq!(Sample::asked(body.as_bytes()).unwrap(), (Sample::Event, false), "{body:?}");
        }
        assert_eq!(Sample::asked(br#"{"sample":"group"}"#).unwrap(), (Sample::Group, false));
        assert_eq!(Sample::asked(br#"{"create":true}"#).unwrap(), (Sample::Event, true));
        for (body, field) in [(r#"{"sample":"groups"}"#, "sample"), (r#"{"sample":2}"#, "sample"), (r#"{"sampel":"group"}"#, "sampel")] {
            match Sample::asked(body.as_bytes()) {
                Err(ApiError::Invalid(invalid)) => assert_eq!(invalid.field, field, "{body}"),
                _ => panic!("{body} must be refused naming {field}"),
            }
        }
        assert!(matches!(Sample::asked(b"[1]"), Err(ApiError::BadRequest(_))));
        assert!(matches!(Sample::asked(b"{"), Err(ApiError::BadRequest(_))));
        assert!(matches!(Sample::asked(b"\n"), Err(ApiError::BadRequest(_))), "white space is no JSON");
        let (id, body) = Sample::Group.render();
        assert!(id.starts_with("grp_"));
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["event_id"], id.as_str());
    }
}
