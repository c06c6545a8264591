//! A rule's `active_hours` (SPEC section 16): when in the week the rule may match, parsed once
//! when the rule is saved, then only asked whether an instant falls inside.
//!
//! The field is one window or a list of 1 to [`MAX_WINDOWS`] windows, each
//! `{"timezone":"Europe/London","days":["mon",…],"from":"08:00","to":"18:00","invert":true?}`.
//! A list is active when any of its windows is. Invariants of a parsed window: an IANA zone
//! (names are matched ignoring ASCII case and stored as the database spells them); a non-empty
//! set of days (`mon`…`sun`, any case, kept lowercase in week order, repeats dropped); `from`
//! from 00:00 to 23:59 (inclusive), `to` from 00:00 to 24:00 (exclusive), never equal. All
//! fields but `invert` are required.
//!
//! Times are local wall-clock times in the window's zone, compared to the minute. A window with
//! `from` > `to` spans midnight and belongs to the day it starts on (Fri 22:00–06:00 covers Fri
//! 22:00 to Sat 06:00). Because the local clock is compared, a `from` inside a spring-forward gap
//! starts when the clock passes it, and a wall-clock time that happens twice at fall-back is
//! inside the window both times. `invert: true` makes the window active when the instant is not
//! inside it.

use chrono::{DateTime, Datelike, Timelike, Weekday};
use chrono_tz::{Tz, TZ_VARIANTS};
use serde_json::{json, Map, Value};

use super::Invalid;

/// Most windows in one rule's `active_hours` list.
pub const MAX_WINDOWS: usize = 16;

const MINUTES_PER_DAY: u16 = 24 * 60;
const KEYS: [&str; 5] = ["timezone", "days", "from", "to", "invert"];
const EXAMPLE: &str = r#"{"timezone":"Europe/London","days":["mon","tue","wed","thu","fri"],"from":"08:00","to":"18:00"}"#;
const ZONE_HINT: &str = "an IANA time zone such as Europe/London or America/New_York (or UTC)";
/// The day names a client writes, in week order (index = days from Monday).
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_LABELS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A rule's `active_hours`: one window or a list of windows.
#[derive(Debug, Clone)]
pub struct ActiveHours {
    windows: Vec<Window>,
    /// The client sent a list (kept so the stored JSON has the shape the client sent).
    listed: bool,
}

/// One window: days of the week and a span of local time in a zone.
#[derive(Debug, Clone)]
struct Window {
    zone: Tz,
    /// Bit `n` set: the window starts on the day `n` days from Monday.
    days: u8,
    /// Minutes after local midnight, inclusive; below [`MINUTES_PER_DAY`].
    from: u16,
    /// Minutes after local midnight, exclusive; at most [`MINUTES_PER_DAY`]; never `from`.
    to: u16,
    invert: bool,
}

impl ActiveHours {
    /// `value` is the JSON the client sent for the field (an object, or an array of
    /// 1..=[`MAX_WINDOWS`] objects). `field` is `active_hours`; errors name e.g.
    /// `active_hours[1].timezone`, `active_hours.from`.
    pub fn parse(value: &Value, field: &str) -> Result<ActiveHours, Invalid> {
        match value {
            Value::Object(_) => Ok(Self { windows: vec![Window::parse(value, field)?], listed: false }),
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(Invalid::new(
                        field,
                        format!("must hold at least one window; leave `{field}` out for a rule that is active at all times"),
                    ));
                }
                if items.len() > MAX_WINDOWS {
                    return Err(Invalid::new(field, format!("has {} windows; the limit is {MAX_WINDOWS}", items.len())));
                }
                let windows = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Window::parse(item, &format!("{field}[{i}]")))
                    .collect::<Result<_, _>>()?;
                Ok(Self { windows, listed: true })
            }
            _ => Err(Invalid::new(field, format!("must be a window such as {EXAMPLE}, or a list of 1 to {MAX_WINDOWS} of them"))),
        }
    }

    /// Is the rule active at `at` (Unix milliseconds, UTC)?
    pub fn contains(&self, at: i64) -> bool {
        self.windows.iter().any(|window| window.active(at))
    }

    /// Normalised JSON to store and to answer in the API: the shape the client sent (object or
    /// list), days in week order, zone names as the database spells them, `invert` only when true.
    pub fn to_json(&self) -> Value {
        if self.listed {
            Value::Array(self.windows.iter().map(Window::to_json).collect())
        } else {
            self.windows[0].to_json()
        }
    }

    /// A short description for people and the preview, one line:
    /// "Mon–Fri 08:00–18:00 Europe/London", "outside Sat, Sun 10:00–14:00 UTC"; windows of a
    /// list are joined with " or ".
    pub fn describe(&self) -> String {
        self.windows.iter().map(Window::describe).collect::<Vec<_>>().join(" or ")
    }
}

impl Window {
    fn parse(value: &Value, field: &str) -> Result<Self, Invalid> {
        let object = value.as_object().ok_or_else(|| Invalid::new(field, format!("must be an object such as {EXAMPLE}")))?;
        if let Some(unknown) = object.keys().find(|key| !KEYS.contains(&key.as_str())) {
            return Err(Invalid::new(
                format!("{field}.{unknown}"),
                format!("is not a field of an active hours window; it takes {}", KEYS.map(|k| format!("`{k}`")).join(", ")),
            ));
        }
        let zone = parse_zone(object.get("timezone"), &format!("{field}.timezone"))?;
        let days = parse_days(object.get("days"), &format!("{field}.days"))?;
        let from = parse_clock(object.get("from"), &format!("{field}.from"), false)?;
        let to = parse_clock(object.get("to"), &format!("{field}.to"), true)?;
        if from == to {
            return Err(Invalid::new(
                format!("{field}.to"),
                format!("is the same as `from` ({}); a window must not be empty (for a whole day use 00:00 to 24:00)", clock(from)),
            ));
        }
        let invert = match object.get("invert") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(invert)) => *invert,
            Some(_) => return Err(Invalid::new(format!("{field}.invert"), "must be true or false")),
        };
        Ok(Self { zone, days, from, to, invert })
    }

    fn active(&self, at: i64) -> bool {
        self.covers(at) != self.invert
    }

    /// Whether the local wall-clock time at `at` falls inside the window.
    fn covers(&self, at: i64) -> bool {
        // Beyond chrono's range (hundreds of thousands of years away): inside no window.
        let Some(utc) = DateTime::from_timestamp_millis(at) else { return false };
        let local = utc.with_timezone(&self.zone);
        let day = local.weekday();
        let minute = (local.hour() * 60 + local.minute()) as u16;
        if self.from < self.to {
            self.starts_on(day) && self.from <= minute && minute < self.to
        } else {
            // Spans midnight: the evening of a listed day, or the morning after one.
            (self.starts_on(day) && minute >= self.from) || (self.starts_on(day.pred()) && minute < self.to)
        }
    }

    fn starts_on(&self, day: Weekday) -> bool {
        self.days & (1 << day.num_days_from_monday()) != 0
    }

    fn to_json(&self) -> Value {
        let days: Vec<&str> = (0..7).filter(|n| self.days & (1 << n) != 0).map(|n| DAY_NAMES[n]).collect();
        let mut window = Map::new();
        window.insert("timezone".into(), json!(self.zone.name()));
        window.insert("days".into(), json!(days));
        window.insert("from".into(), json!(clock(self.from)));
        window.insert("to".into(), json!(clock(self.to)));
        if self.invert {
            window.insert("invert".into(), json!(true));
        }
        Value::Object(window)
    }

    fn describe(&self) -> String {
        let outside = if self.invert { "outside " } else { "" };
        let next_day = if self.from > self.to { " (next day)" } else { "" };
        format!("{outside}{} {}–{}{next_day} {}", describe_days(self.days), clock(self.from), clock(self.to), self.zone.name())
    }
}

fn parse_zone(value: Option<&Value>, field: &str) -> Result<Tz, Invalid> {
    match value {
        None | Some(Value::Null) => Err(Invalid::new(field, format!("is required: {ZONE_HINT}"))),
        Some(Value::String(name)) => name
            .parse::<Tz>()
            .ok()
            .or_else(|| TZ_VARIANTS.iter().copied().find(|zone| zone.name().eq_ignore_ascii_case(name.trim())))
            .ok_or_else(|| Invalid::new(field, format!("`{}` is not a time zone; use {ZONE_HINT}", super::tenant::clip(name)))),
        Some(_) => Err(Invalid::new(field, format!("must be a string: {ZONE_HINT}"))),
    }
}

fn parse_days(value: Option<&Value>, field: &str) -> Result<u8, Invalid> {
    const WANTED: &str = "the days the window starts on, such as [\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]";
    let list = match value {
        None | Some(Value::Null) => return Err(Invalid::new(field, format!("is required: {WANTED}"))),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(Invalid::new(field, format!("must be an array of {WANTED}"))),
    };
    if list.is_empty() {
        return Err(Invalid::new(field, format!("must name at least one day: {WANTED}")));
    }
    let mut days = 0u8;
    for (i, item) in list.iter().enumerate() {
        let day = item
            .as_str()
            .and_then(|name| DAY_NAMES.iter().position(|day| day.eq_ignore_ascii_case(name.trim())))
            .ok_or_else(|| Invalid::new(format!("{field}[{i}]"), format!("{} is not a day; use mon, tue, wed, thu, fri, sat or sun", super::tenant::clip(&item.to_string()))))?;
        days |= 1 << day;
    }
    Ok(days)
}

/// Minutes after midnight from "HH:MM" on the 24-hour clock; 24:00 only where `end_of_day`.
fn parse_clock(value: Option<&Value>, field: &str, end_of_day: bool) -> Result<u16, Invalid> {
    let range = if end_of_day { "00:00 to 24:00 (the end of the day)" } else { "00:00 to 23:59" };
    let text = match value {
        None | Some(Value::Null) => return Err(Invalid::new(field, format!("is required: a time from {range}, written HH:MM"))),
        Some(Value::String(text)) => text,
        Some(_) => return Err(Invalid::new(field, format!("must be a time as a string, HH:MM from {range}, such as \"08:00\""))),
    };
    let digits = |part: &str| (part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit())).then(|| part.parse::<u16>().ok()).flatten();
    let (hours, minutes) = text
        .split_once(':')
        .and_then(|(h, m)| Some((digits(h)?, digits(m)?)))
        .ok_or_else(|| Invalid::new(field, format!("`{}` is not a time; write it as HH:MM on the 24-hour clock, such as \"08:00\"", super::tenant::clip(text))))?;
    let minute = hours * 60 + minutes;
    let latest = if end_of_day { MINUTES_PER_DAY } else { MINUTES_PER_DAY - 1 };
    if hours > 24 || minutes > 59 || minute > latest {
        let only_to = if !end_of_day && minute == MINUTES_PER_DAY { " (24:00 is only for `to`)" } else { "" };
        return Err(Invalid::new(field, format!("`{text}` is not a time from {range}{only_to}")));
    }
    Ok(minute)
}

/// "08:00"; the end of the day is "24:00".
fn clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// "Mon–Fri", "Sat, Sun", "Mon, Wed, Fri", "Fri–Mon" (a run may wrap over Sunday).
fn describe_days(days: u8) -> String {
    // Runs of consecutive days, as (first, length), in week order.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for day in (0..7).filter(|n| days & (1 << n) != 0) {
        match runs.last_mut() {
            Some((first, length)) if *first + *length == day => *length += 1,
            _ => runs.push((day, 1)),
        }
    }
    // A run ending on Sunday goes on into one starting on Monday.
    if runs.len() > 1 && runs[0].0 == 0 && runs.last().is_some_and(|(first, length)| first + length == 7) {
        let (_, monday_length) = runs.remove(0);
        runs.last_mut().expect("more than one run").1 += monday_length;
    }
    runs.iter()
        .map(|&(first, length)| {
            let last = (first + length - 1) % 7;
            match length {
                1 => DAY_LABELS[first].to_string(),
                2 => format!("{}, {}", DAY_LABELS[first], DAY_LABELS[last]),
                _ => format!("{}–{}", DAY_LABELS[first], DAY_LABELS[last]),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
