//! The settings of each channel type in the channel schemas, taken from the types themselves
//! (`ChannelKind::channel_type`), so a new type's settings are documented without an edit here.

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::Modify;

use crate::channels::{ChannelKind, Setting};

/// The settings of each channel type, beside `url`, `headers` and `rate_limit_per_second`, taken
/// from the types: a property of `ChannelInput`, `ChannelPatch` and `Channel` each.
pub(super) struct ChannelSettings;

impl Modify for ChannelSettings {
    fn modify(&self, doc: &mut Document) {
        // Each setting's name, the types that take it (and whether they require it), and
        // whether it is a credential.
        let mut about: Vec<(&'static str, Vec<String>, bool)> = Vec::new();
        for kind in ChannelKind::all() {
            let channel_type = kind.channel_type();
            // A URL under another name (Sentinel's `endpoint`) is the type's too.
            let url = (channel_type.url_field() != "url").then_some(Setting::text(channel_type.url_field(), "URL").required());
            for setting in channel_type.settings().iter().chain(url.as_ref()) {
                let words = if setting.required { format!("{} (required)", kind.as_str()) } else { kind.as_str().to_string() };
                match about.iter_mut().find(|(name, _, _)| *name == setting.name) {
                    Some((_, kinds, secret)) => {
                        kinds.push(words);
                        *secret |= setting.secret;
                    }
                    None => about.push((setting.name, vec![words], setting.secret)),
                }
            }
        }
        let Some(components) = doc.components.as_mut() else { return };
        for schema in ["ChannelInput", "ChannelPatch", "Channel"] {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else { continue };
            for (name, kinds, secret) in &about {
                let credential = if *secret { " A credential: write-only, reads show it masked, and the masked form sent back keeps it." } else { "" };
                let property = ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .description(Some(format!("Setting of {} channels.{credential}", kinds.join(", "))));
                object.properties.entry(name.to_string()).or_insert(RefOr::T(Schema::Object(property.build())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::openapi::rendered;

    #[test]
    fn every_channel_setting_is_documented() {
        let doc: serde_json::Value = serde_json::from_str(rendered()).unwrap();
        for kind in ChannelKind::all() {
            let channel_type = kind.channel_type();
            let names = channel_type.settings().iter().map(|s| s.name).chain([channel_type.url_field()]);
            for name in names {
                for schema in ["ChannelInput", "ChannelPatch", "Channel"] {
                    let property = &doc["components"]["schemas"][schema]["properties"][name];
                    let about = property["description"].as_str().unwrap_or_default();
                    assert!(name == "url" || about.contains(kind.as_str()), "{schema}.{name} does not mention {}: {property}", kind.as_str());
                    assert!(property.is_object(), "{schema} has no {name}");
                }
            }
        }
        let endpoint = &doc["components"]["schemas"]["ChannelInput"]["properties"]["endpoint"]["description"];
        assert!(endpoint.as_str().is_some_and(|a| a.contains("sentinel (required)")), "{endpoint}");
    }
}
