//! Ingestion coalescing: which waiting ingestion requests go into the next write.
//!
//! Requests that arrive while [`INGEST_WRITES`] writes are already under way wait and are then
//! written together, in one transaction, up to [`MERGED_EVENTS`] events (each keeps its own
//! answer and its own all-or-nothing: if the merged write fails, each request is written again
//! on its own, first in line, so one request's bad tenant never fails another's). At low load a
//! request is written at once; under load, many single-event requests share one transaction's
//! statements instead of paying about seven each. This is plain data; the RuleMatcher runs the
//! writes.

use std::collections::VecDeque;

use crate::store::events::{Ingested, MatchedEvent};
use crate::store::StoreError;

/// Ingestion writes under way at once; later requests wait and are merged into the next one.
pub const INGEST_WRITES: usize = 2;
/// Most events one merged ingestion write holds (a larger request is written alone).
pub const MERGED_EVENTS: usize = 1000;

/// Where an ingestion request hears how its write went.
pub type IngestAnswer = tokio::sync::oneshot::Sender<Result<Vec<Ingested>, StoreError>>;

/// An ingestion request waiting for a write.
pub struct WaitingIngest {
    pub matched: Vec<MatchedEvent>,
    pub is_batch: bool,
    pub answer: IngestAnswer,
    /// It was in a merged write that failed: it is written on its own.
    alone: bool,
}

impl WaitingIngest {
    pub fn new(matched: Vec<MatchedEvent>, is_batch: bool, answer: IngestAnswer) -> Self {
        WaitingIngest { matched, is_batch, answer, alone: false }
    }
}

/// The waiting requests and the writes under way.
#[derive(Default)]
pub struct Coalescer {
    waiting: VecDeque<WaitingIngest>,
    writes: usize,
}

impl Coalescer {
    pub fn push(&mut self, request: WaitingIngest) {
        self.waiting.push_back(request);
    }

    /// The next group to write, if a write may start: as many waiting requests, in order, as
    /// fit in [`MERGED_EVENTS`] (at least one; one written alone goes alone). The write counts
    /// as under way until [`Coalescer::finished`].
    pub fn next_group(&mut self) -> Option<Vec<WaitingIngest>> {
        if self.writes >= INGEST_WRITES || self.waiting.is_empty() {
            return None;
        }
        let mut group: Vec<WaitingIngest> = Vec::new();
        let mut events = 0;
        while let Some(next) = self.waiting.front() {
            let fits = group.is_empty() || (!next.alone && events + next.matched.len() <= MERGED_EVENTS);
            if !fits || group.first().is_some_and(|w| w.alone) {
                break;
            }
            events += next.matched.len();
            group.extend(self.waiting.pop_front());
        }
        self.writes += 1;
        Some(group)
    }

    /// A write ended.
    pub fn finished(&mut self) {
        self.writes -= 1;
    }

    /// A merged write failed: each of its requests is written again on its own, first in line.
    pub fn write_each_alone(&mut self, group: Vec<WaitingIngest>) {
        for mut waiting in group.into_iter().rev() {
            waiting.alone = true;
            self.waiting.push_front(waiting);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{EventData, EventType, NewEvent, TenantRef};
    use crate::domain::severity::Severity;

    fn request(events: usize) -> WaitingIngest {
        let matched = (0..events)
            .map(|i| MatchedEvent {
                event: NewEvent {
                    id: format!("evt_{i}"),
                    event_type: EventType::parse("event", "sharing.link_created").unwrap(),
                    occurred_at: 0,
                    severity: Severity::Low,
                    tenant: TenantRef::Router,
                    data: EventData::new(&serde_json::Map::new()),
                },
                routes: Vec::new(),
            })
            .collect();
        WaitingIngest::new(matched, false, tokio::sync::oneshot::channel().0)
    }

    fn sizes(group: &[WaitingIngest]) -> Vec<usize> {
        group.iter().map(|w| w.matched.len()).collect()
    }

    #[test]
    fn requests_that_wait_for_a_write_are_merged_up_to_the_limit_and_a_failed_merge_is_written_one_by_one() {
        let mut coalescer = Coalescer::default();
        coalescer.push(request(1));
        // At low load a request is written at once, alone.
        assert_eq!(sizes(&coalescer.next_group().unwrap()), vec![1]);
        coalescer.push(request(1));
        assert_eq!(sizes(&coalescer.next_group().unwrap()), vec![1]);
        // Two writes under way: the next requests wait.
        for n in [1, 2, 600, 500, 3] {
            coalescer.push(request(n));
        }
        assert!(coalescer.next_group().is_none());
        coalescer.finished();
        // Merged in order while they fit in MERGED_EVENTS; the rest waits for the next write.
        let merged = coalescer.next_group().unwrap();
        assert_eq!(sizes(&merged), vec![1, 2, 600]);
        coalescer.finished();
        // The merged write failed: each of its requests again, alone, before the others.
        coalescer.write_each_alone(merged);
        for alone in [1, 2, 600] {
            assert_eq!(sizes(&coalescer.next_group().unwrap()), vec![alone]);
            coalescer.finished();
        }
        assert_eq!(sizes(&coalescer.next_group().unwrap()), vec![500, 3]);
    }
}
