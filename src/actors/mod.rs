//! The actors of the design card: [`rule_matcher::RuleMatcher`] turns events into deliveries,
//! one [`delivery::DeliveryActor`] per channel sends them, and
//! [`retry_supervisor::RetrySupervisor`] holds the timers that wake a channel when a retry is due.

pub mod delivery;
pub mod group_flusher;
pub mod messages;
pub mod retry_supervisor;
pub mod rule_matcher;
