//! `column IN (ids)` for lookups by a list of ids, as one short statement whatever the number of
//! ids, on either backend (see [`id_in`]).

use super::MultiBackend;

/// `column IN (ids)` as one short statement whatever the number of ids, so it is prepared once
/// per connection and then taken from diesel's statement cache, on either backend. SQLite has no
/// array parameter: the ids go as one JSON array (`IN (SELECT value FROM json_each(?))`);
/// PostgreSQL takes a text array (`= ANY($1)`). diesel's `eq_any` writes an `IN` list of n
/// values on SQLite, parsed and planned anew for every n (a sixth of the writer's time once), and
/// its `sql()` literals are never cached (4 % of the writer's samples were their prepares,
/// BENCHMARKS.md). `column` is written into the SQL as it is: a name in the code, never input.
pub fn id_in<'a>(column: &'static str, ids: &'a [&'a str]) -> IdIn<'a> {
    IdIn { column, ids, json: serde_json::to_string(ids).expect("strings always serialise") }
}

/// The condition [`id_in`] builds.
#[derive(Debug, Clone)]
pub struct IdIn<'a> {
    column: &'static str,
    ids: &'a [&'a str],
    /// The ids as SQLite binds them.
    json: String,
}

impl diesel::expression::Expression for IdIn<'_> {
    type SqlType = diesel::sql_types::Bool;
}

impl<QS> diesel::expression::AppearsOnTable<QS> for IdIn<'_> {}

impl<QS> diesel::expression::SelectableExpression<QS> for IdIn<'_> {}

impl diesel::expression::ValidGrouping<()> for IdIn<'_> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl diesel::query_builder::QueryId for IdIn<'_> {
    type QueryId = ();
    // Not a static id: diesel caches the statement by its SQL, which is one text per column.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for IdIn<'_> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> diesel::QueryResult<()> {
        out.push_sql(self.column);
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<diesel::sql_types::Text, _>(&self.json)?;
        out.push_sql("))");
        Ok(())
    }
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for IdIn<'_> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>) -> diesel::QueryResult<()> {
        out.push_sql(self.column);
        out.push_sql(" = ANY(");
        out.push_bind_param::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(self.ids)?;
        out.push_sql(")");
        Ok(())
    }
}

impl diesel::query_builder::QueryFragment<MultiBackend> for IdIn<'_> {
    fn walk_ast<'b>(&'b self, pass: diesel::query_builder::AstPass<'_, 'b, MultiBackend>) -> diesel::QueryResult<()> {
        MultiBackend::walk_variant_ast(self, pass)
    }
}
