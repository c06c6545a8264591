//! Ids: a type prefix and a time-sortable ULID body (`ch_01JD…`, `rule_…`, `dlv_…`, `evt_…`).
//! Ids made in one process are strictly increasing, so "newest first" is "id descending".

use std::sync::Mutex;

static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);

fn next_ulid() -> ulid::Ulid {
    let mut guard = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    // Overflow needs 2^80 ids in one millisecond; fall back to a fresh random id if it happens.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

/// A new id with the given prefix, e.g. `new_id("dlv")` → `dlv_01JD7Y2Q8V3K4M5N6P7Q8R9S0T`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", next_ulid())
}

pub const CHANNEL: &str = "ch";
pub const RULE: &str = "rule";
pub const DELIVERY: &str = "dlv";
pub const EVENT: &str = "evt";
/// A request that carried several deliveries (batching channel types).
pub const REQUEST: &str = "req";
pub const SILENCE: &str = "sil";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_creation() {
        let ids: Vec<String> = (0..1000).map(|_| new_id(DELIVERY)).collect();
        assert!(ids.iter().all(|id| id.starts_with("dlv_") && id.len() == 30));
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
