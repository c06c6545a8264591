//! The operations' ids, from the route table (`module_handler`), and the OpenAPI links between
//! them: where the ids an answer carries lead.

use utoipa::openapi::link::Link;
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::Modify;

use super::operations;

/// Each operation's id, from the route table (`module_handler`, unique).
pub(super) struct Names;

impl Modify for Names {
    fn modify(&self, doc: &mut Document) {
        for (method, path, operation) in operations(doc) {
            let route = crate::routes::ROUTES.iter().find(|r| r.method == method && r.path == path);
            operation.operation_id = route.map(|r| r.operation_id.to_string());
        }
    }
}

/// Where an answer's ids lead (OpenAPI links, which clients and test tools follow): a created
/// object's `id`, and the first item of a list, to every operation on `…/{id}` below it; an
/// ingested event's first delivery to the delivery's operations.
pub(super) struct Links;

impl Modify for Links {
    fn modify(&self, doc: &mut Document) {
        let targets: Vec<(String, String)> = operations(doc)
            .into_iter()
            .filter_map(|(_, path, operation)| operation.operation_id.clone().map(|id| (path, id)))
            .collect();
        let below = |collection: &str| -> Vec<&(String, String)> {
            let prefix = format!("{collection}/{{id}}");
            targets.iter().filter(|(path, _)| *path == prefix || path.starts_with(&format!("{prefix}/"))).collect()
        };
        for (method, path, operation) in operations(doc) {
            let (status, source, about, leads_to) = match (method, path.as_str()) {
                ("post", "/api/v1/events") => {
                    ("202", "$response.body#/deliveries/0/id", "The first delivery of one event (a batch answers `results`).", below("/api/v1/deliveries"))
                }
                ("post", collection) => ("201", "$response.body#/id", "The object created.", below(collection)),
                ("get", collection) => ("200", "$response.body#/items/0/id", "The first item of the list.", below(collection)),
                _ => continue,
            };
            let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status) else { continue };
            for (_, target) in leads_to {
                let link = Link::builder().operation_id(target.clone()).parameter("id", source).description(about).build();
                response.links.insert(target.clone(), RefOr::T(link));
            }
        }
    }
}
