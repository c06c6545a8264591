//! Channel types: how a delivery's event payload (SPEC section 4, stored once at ingestion)
//! becomes the body a vendor expects, one file per type. The webhook type sends the payload as it
//! is (`outbound`); `slack` and `teams` render it in the vendor's own format.
//!
//! Progress on issue 12: the Slack and Teams renderings are built and unit-tested here; wiring
//! them into channel creation, the DeliveryActor's requests and the answers' classification
//! comes next (until then both types are refused with 422, as before).

pub mod slack;
pub mod teams;
pub mod text;
