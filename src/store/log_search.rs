//! The alert log's search (`q`): a delivery matches when its event id, or its event's
//! `data.site_url`, `data.principal` or `data.resource_path`, contains the text, ignoring the
//! case of ASCII letters. Each field is read out of the stored payload on its own (SQLite's
//! `json_extract`, PostgreSQL's `->>`), so the text never matches a key or another field; `%`,
//! `_` and `\` in it are matched as themselves. The events are looked at through the delivery's
//! `event_id` (their primary key), newest delivery first, so a page stops reading once it is
//! full; a search that matches little reads the whole log (its cost grows with the retention).

use diesel::sql_types::{Bool, Text};

use super::schema::deliveries;

/// A condition on `deliveries`, boxed for the alert log's boxed query.
pub type Condition = Box<dyn diesel::BoxableExpression<deliveries::table, <super::Conn as diesel::Connection>::Backend, SqlType = Bool>>;

/// The fields of the payload searched besides the event id, as JSON paths from the payload.
pub const FIELDS: [&str; 3] = ["site_url", "principal", "resource_path"];

/// `text` as a LIKE pattern that finds it anywhere, its `%`, `_` and `\` escaped with `\`.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The condition on `deliveries` that the search `text` matches, for the backend in use.
pub fn matches(text: &str, postgres: bool) -> Condition {
    let pattern = contains_pattern(text);
    // SQLite's LIKE ignores the case of ASCII letters; PostgreSQL's ILIKE is told to do the same
    // (the payload's collation is "C").
    let like = if postgres { "ILIKE" } else { "LIKE" };
    let field = |name: &str| {
        if postgres {
            format!("((e.payload::jsonb)->'data'->>'{name}') {like} ")
        } else {
            format!("(CASE WHEN json_valid(e.payload) THEN json_extract(e.payload, '$.data.{name}') END) {like} ")
        }
    };
    Box::new(diesel::dsl::sql::<Bool>(&format!("(deliveries.event_id {like} "))
        .bind::<Text, _>(pattern.clone())
        .sql(&format!(" ESCAPE '\\' OR EXISTS (SELECT 1 FROM events e WHERE e.id = deliveries.event_id AND ({}", field(FIELDS[0])))
        .bind::<Text, _>(pattern.clone())
        .sql(&format!(" ESCAPE '\\' OR {}", field(FIELDS[1])))
        .bind::<Text, _>(pattern.clone())
        .sql(&format!(" ESCAPE '\\' OR {}", field(FIELDS[2])))
        .bind::<Text, _>(pattern)
        .sql(" ESCAPE '\\')))"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_the_search_text_are_matched_as_themselves() {
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(contains_pattern("Zoë"), "%Zoë%");
    }
}
