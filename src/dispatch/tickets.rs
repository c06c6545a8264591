//! One attempt at a ticketing channel (SPEC section 17): the conversation of
//! `channels::ticket` driven request by request, with what must be committed between two
//! requests (a create about to go, a closed ticket replaced) written to the store before the
//! next one goes. The attempt's outcome is the last answer's, judged by the state machine; what
//! it wrote to the incident is recorded with it (`attempts::record`).

use std::time::Duration;

use actix_web::web::Bytes;
use serde_json::Value;

use crate::channels::ticket::{first_step, next, Next, Step, TicketSystem};
use crate::channels::{HttpPost, Item, Target, Verdict};
use crate::domain::attempt::AttemptOutcome;
use crate::domain::incident::{IncidentView, IncidentWrite};
use crate::domain::retry::ErrorKind;
use crate::domain::time::now_ms;
use crate::outbound::{failure, Outbound, Sent};
use crate::store::Store;

/// Most requests one attempt makes: read, note refused, create; or search, note.
const MOST_REQUESTS: usize = 5;

/// Delivers `item` to the ticketing system of `target`, in the incident `incident` (opened
/// before). The outbound exchange knows `CREATE_SETTLE`: how long after a create of unknown
/// outcome the system's search is trusted to show it.
/// With `gather`, a note also carries the deliveries of the incident waiting behind this one
/// (a scheduled attempt; a person's Redeliver sends only what was asked for), recorded with it.
pub async fn converse(store: &Store, outbound: &Outbound, target: &Target, system: &dyn TicketSystem, item: Item<'_>, mut incident: IncidentView, gather: bool) -> Sent {
    let settle = outbound.create_settle();
    let deadline = outbound.deadline();
    let started_at = now_ms();
    let settle_ms = settle.as_millis() as i64;
    let sending = outbound.sending(started_at);
    let key_hash = incident.key.hash.clone();
    let write = |ticket: Option<crate::domain::incident::Ticket>, settles_create: bool, marker: &str| IncidentWrite {
        channel_id: target.channel_id.clone(),
        key_hash: key_hash.clone(),
        marker: marker.to_string(),
        ticket: ticket.map(|t| crate::domain::incident::Ticket { company: system.company(&item), ..t }),
        thread: None,
        settles_create,
    };
    let ended = |outcome: AttemptOutcome, request, incident| Sent { outcome: AttemptOutcome { started_at, ..outcome }, carried: 1, request, incident, also: Vec::new() };
    // The deliveries a note took in besides this one, and the note's payload for them all.
    let mut gathered: (Vec<String>, Option<Bytes>) = (Vec::new(), None);
    let mut step = match first_step(&incident, started_at, settle_ms) {
        Ok(step) => step,
        Err(until) => {
            // An earlier create may have gone through (the router stopped before its answer, or
            // none came): nothing is sent until the system's search can be trusted to show it.
            let wait = Duration::from_millis((until - started_at).max(0) as u64);
            let why = format!(
                "an earlier request to open this incident's ticket may have gone through; its marker {} is searched for once CREATE_SETTLE has passed (in {})",
                incident.marker,
                humantime::format_duration(Duration::from_secs(wait.as_secs().max(1)))
            );
            let outcome = AttemptOutcome { retry_after: Some(wait), ..failure(ErrorKind::Incident, why) };
            return ended(outcome, None, None);
        }
    };
    if let Err(failed) = discover(outbound, target, system, deadline).await {
        return ended(failed.0, failed.1, None);
    }
    let mut this_delivery = incident.create.as_ref().is_some_and(|c| c.delivery_id == item.delivery_id);
    // The search found the earlier create's ticket: a note on it settles that create.
    let mut found = false;
    for _ in 0..MOST_REQUESTS {
        let request = match &step {
            Step::Read(ticket) => system.read(target, ticket),
            Step::Note(ticket) => {
                if gather && gathered.1.is_none() {
                    gathered = waiting_behind(store, target, &item, &incident).await;
                }
                let noted = Item { payload: gathered.1.as_ref().unwrap_or(item.payload), ..item };
                system.note(target, ticket, &noted, sending)
            }
            Step::Search => system.search(target, &incident.marker, &item),
            Step::Create => {
                // Committed before the create goes: should the router stop before its answer, the
                // next attempt searches for the marker instead of opening a second ticket.
                let (channel_id, key_hash, marker, delivery_id) = (target.channel_id.clone(), incident.key.hash.clone(), incident.marker.clone(), item.delivery_id.to_string());
                let (seen, now) = (incident.create.as_ref().map(|c| c.started_at), now_ms());
                match store.write(move |conn| crate::store::incidents::create_starting(conn, &channel_id, &key_hash, &marker, seen, &delivery_id, now)).await {
                    Ok(true) => {
                        this_delivery = true;
                        incident.create = Some(crate::domain::incident::PendingCreate { started_at: now, delivery_id: item.delivery_id.to_string() });
                    }
                    Ok(false) => {
                        let why = "another attempt of this incident is opening its ticket (or opened a new one) while this one ran; nothing was sent, tried again";
                        return ended(failure(ErrorKind::Incident, why.into()), None, None);
                    }
                    Err(err) => return ended(failure(ErrorKind::Incident, format!("the create could not be marked in the router's database ({err}); nothing was sent")), None, None),
                }
                HttpPost { once: true, ..system.create(target, &item, &incident, sending) }
            }
        };
        let called = outbound.call(target, &request, deadline).await;
        let reply = match called.answer {
            Ok(reply) => reply,
            Err(outcome) => {
                // No answer. A create that may have reached the system stays pending: the next
                // attempt waits CREATE_SETTLE and searches first. One that surely did not
                // (refused by the guard, a name that does not resolve, no token) is settled.
                let sure_not_sent = matches!(outcome.error_kind, Some(ErrorKind::BlockedTarget | ErrorKind::Dns | ErrorKind::Token | ErrorKind::Tls | ErrorKind::Redirect));
                let outcome = match step {
                    Step::Create if !sure_not_sent => AttemptOutcome { retry_after: Some(settle), ..outcome },
                    _ => outcome,
                };
                let settles = step == Step::Create && sure_not_sent;
                return ended(outcome, called.shown, Some(write(None, settles, &incident.marker)));
            }
        };
        let refused = system.refusal_kind(&step, reply.status(), &String::from_utf8_lossy(reply.body()));
        match next(system, target, &step, reply.status(), reply.body(), this_delivery) {
            Next::Go(then) => {
                found |= step == Step::Search;
                step = then;
            }
            Next::Reopen => {
                let (channel_id, key, old, now) = (target.channel_id.clone(), incident.key.clone(), incident.clone(), now_ms());
                match store.write(move |conn| crate::store::incidents::ticket_closed(conn, &channel_id, &key, &old, now)).await {
                    Ok(replaced) => incident = replaced,
                    Err(err) => {
                        let why = format!("the incident's ticket is closed, and a new one could not be prepared in the router's database ({err}); nothing more was sent");
                        return ended(failure(ErrorKind::Incident, why), called.shown, None);
                    }
                }
                this_delivery = false;
                step = match first_step(&incident, now_ms(), settle_ms) {
                    Ok(then) => then,
                    // Another attempt replaced it first and is opening the new ticket: wait.
                    Err(until) => {
                        let wait = Duration::from_millis((until - now_ms()).max(0) as u64);
                        let why = "the incident's ticket is closed and another attempt is opening its next one; nothing was sent, tried again once it is known";
                        return ended(AttemptOutcome { retry_after: Some(wait), ..failure(ErrorKind::Incident, why.into()) }, called.shown, None);
                    }
                };
            }
            Next::Done { verdict, ticket, settles } => {
                let settles = settles || (found && verdict == Verdict::Delivered);
                // A create answered with a 5xx (or a 2xx naming no ticket) may have made one.
                let ambiguous = step == Step::Create && !settles;
                let mut outcome = reply.outcome(verdict);
                if outcome.error_kind.is_some() && refused.is_some() {
                    outcome.error_kind = refused;
                }
                if ambiguous && matches!(outcome.verdict, Verdict::Retry(_)) {
                    outcome.retry_after = Some(outcome.retry_after.unwrap_or_default().max(settle));
                }
                let noted = matches!(step, Step::Note(_)) && outcome.succeeded();
                let also = if noted { std::mem::take(&mut gathered.0) } else { Vec::new() };
                return Sent { also, ..ended(outcome, called.shown, Some(write(ticket, settles, &incident.marker))) };
            }
        }
    }
    ended(failure(ErrorKind::Incident, format!("the ticketing system kept sending the attempt on after {MOST_REQUESTS} requests; tried again")), None, None)
}

/// Most deliveries waiting behind an attempt that one note takes in: as many as a note lists
/// one by one, so every event a note stands for is named in it.
const MOST_GATHERED: i64 = crate::channels::text::group::ITEMS_MAX as i64 - 1;

/// The deliveries of `item`'s incident waiting behind it, and one payload for them all with it
/// (`None`: none wait, or `item` is a notification, which already sums up its events). A store
/// that does not answer only means each goes in a note of its own.
async fn waiting_behind(store: &Store, target: &Target, item: &Item<'_>, incident: &IncidentView) -> (Vec<String>, Option<Bytes>) {
    let first: Value = serde_json::from_slice(item.payload).unwrap_or_default();
    if crate::channels::text::group::is_notification(&first) {
        return (Vec::new(), None);
    }
    let (channel_id, key_hash, after) = (target.channel_id.clone(), incident.key.hash.clone(), item.delivery_id.to_string());
    let now = now_ms();
    let waiting = store.read(move |conn| crate::store::deliveries::waiting_behind(conn, &channel_id, &key_hash, &after, now, MOST_GATHERED)).await.unwrap_or_default();
    if waiting.is_empty() {
        return (Vec::new(), None);
    }
    let mut payloads = vec![first];
    payloads.extend(waiting.iter().map(|(_, _, p)| serde_json::from_str::<Value>(p).unwrap_or_default()));
    let together = crate::channels::ticket::together(&incident.key, &payloads);
    (waiting.into_iter().map(|(id, _, _)| id).collect(), Some(crate::channels::json_body(&together)))
}

/// Makes the system's discovery request if it has one (Autotask's zone), before `deadline`:
/// `Err` is the failed attempt's outcome and the request as shown.
async fn discover(outbound: &Outbound, target: &Target, system: &dyn TicketSystem, deadline: std::time::Instant) -> Result<(), (AttemptOutcome, Option<std::sync::Arc<crate::outbound::SentRequest>>)> {
    let Some(request) = system.discovery(target) else { return Ok(()) };
    let called = outbound.call(target, &request, deadline).await;
    let reply = called.answer.map_err(|failed| (failed, called.shown.clone()))?;
    let status = reply.status();
    let answer: Value = serde_json::from_slice(reply.body()).unwrap_or_default();
    let verdict = match status {
        200..=299 => match system.discovered(&answer) {
            Ok(()) => return Ok(()),
            Err(why) => Verdict::Retry(why),
        },
        _ => crate::channels::ticket::verdict(system, &Step::Read(Default::default()), status, &String::from_utf8_lossy(reply.body())),
    };
    Err((reply.outcome(verdict), called.shown))
}

/// What a Test of a ticketing channel did.
pub struct TicketTest {
    pub outcome: AttemptOutcome,
    /// What was checked and passed, in order.
    pub checked: Vec<String>,
    /// The `[SPScan TEST]` ticket a Test with `create` opened.
    pub ticket: Option<crate::domain::incident::Ticket>,
}

/// A Test of a ticketing channel: its checks (credentials, project, table, board or queue,
/// every mapped company), creating nothing, and with `create` a `[SPScan TEST]` ticket outside
/// the incident map. Stops at the first check that fails.
pub async fn test(outbound: &Outbound, target: &Target, system: &dyn TicketSystem, item: Item<'_>, create: bool) -> TicketTest {
    let deadline = outbound.deadline();
    let started_at = now_ms();
    let mut checked = Vec::new();
    let mut last = None;
    if let Err((outcome, _)) = discover(outbound, target, system, deadline).await {
        return TicketTest { outcome: AttemptOutcome { error: outcome.error.map(|e| format!("discovering where the system is: {e}")), ..outcome }, checked, ticket: None };
    }
    for check in system.checks(target) {
        let called = outbound.call(target, &check.request, deadline).await;
        let reply = match called.answer {
            Ok(reply) => reply,
            Err(outcome) => return TicketTest { outcome: AttemptOutcome { error: outcome.error.map(|e| format!("checking {}: {e}", check.what)), ..outcome }, checked, ticket: None },
        };
        let body: Value = serde_json::from_slice(reply.body()).unwrap_or_default();
        let verdict = match reply.status() {
            200..=299 if check.expect.as_ref().is_none_or(|expect| expect(&body)) => Verdict::Delivered,
            200..=299 => Verdict::Final(format!("{} was not found", check.what)),
            404 => Verdict::Final(format!("{} was not found (or the account may not see it)", check.what)),
            status => crate::channels::ticket::verdict(system, &Step::Read(Default::default()), status, &String::from_utf8_lossy(reply.body())),
        };
        if verdict != Verdict::Delivered {
            let outcome = reply.outcome(verdict);
            return TicketTest { outcome: AttemptOutcome { error: outcome.error.map(|e| format!("checking {}: {e}", check.what)), ..outcome }, checked, ticket: None };
        }
        checked.push(check.what);
        last = Some(reply);
    }
    if !create {
        let outcome = match last {
            Some(reply) => reply.outcome(Verdict::Delivered),
            None => AttemptOutcome { started_at, ..failure(ErrorKind::Incident, "nothing to check".into()) },
        };
        return TicketTest { outcome: AttemptOutcome { started_at, ..outcome }, checked, ticket: None };
    }
    let incident = crate::channels::ticket::test_incident(&item);
    let request = system.create(target, &item, &incident, outbound.sending(started_at));
    let called = outbound.call(target, &request, deadline).await;
    match called.answer {
        Err(outcome) => TicketTest { outcome, checked, ticket: None },
        Ok(reply) => {
            let body: Value = serde_json::from_slice(reply.body()).unwrap_or_default();
            let ticket = (200..300).contains(&reply.status()).then(|| system.created(target, &body)).flatten();
            let verdict = crate::channels::ticket::verdict(system, &Step::Create, reply.status(), &String::from_utf8_lossy(reply.body()));
            TicketTest { outcome: AttemptOutcome { started_at, ..reply.outcome(verdict) }, checked, ticket }
        }
    }
}
