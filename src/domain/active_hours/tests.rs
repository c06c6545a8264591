//! Active hours against tables of UTC instants (weekdays, midnight spans, DST changes, zones far
//! from UTC), the stored JSON and description, and every parse error with its field path.

use serde_json::json;

use super::*;

/// Unix milliseconds of an RFC 3339 instant.
fn ms(instant: &str) -> i64 {
    DateTime::parse_from_rfc3339(instant).unwrap_or_else(|e| panic!("{instant}: {e}")).timestamp_millis()
}

fn hours(value: Value) -> ActiveHours {
    ActiveHours::parse(&value, "active_hours").unwrap_or_else(|e| panic!("{value}: {} {}", e.field, e.message))
}

/// Asserts, for each (instant, expected) row, whether `value` is active then.
fn check(value: Value, rows: &[(&str, bool)]) {
    let parsed = hours(value.clone());
    for (instant, expected) in rows {
        assert_eq!(parsed.contains(ms(instant)), *expected, "{value} at {instant}");
    }
}

fn window(zone: &str, days: &[&str], from: &str, to: &str) -> Value {
    json!({"timezone": zone, "days": days, "from": from, "to": to})
}

const WEEKDAYS: [&str; 5] = ["mon", "tue", "wed", "thu", "fri"];

#[test]
fn office_hours_cover_weekdays_in_winter_and_summer_time_but_not_the_weekend() {
    check(
        window("Europe/London", &WEEKDAYS, "08:00", "18:00"),
        &[
            // 2027-01-04 is a Monday; London is on GMT (UTC+0).
            ("2027-01-04T07:59:59Z", false),
            ("2027-01-04T08:00:00Z", true),
            ("2027-01-04T17:59:59.999Z", true),
            ("2027-01-04T18:00:00Z", false),
            ("2027-01-08T12:00:00Z", true),  // Friday
            ("2027-01-09T12:00:00Z", false), // Saturday
            ("2027-01-10T12:00:00Z", false), // Sunday
            // 2027-07-05 is a Monday on BST (UTC+1): the window is 07:00–17:00 UTC.
            ("2027-07-05T06:59:00Z", false),
            ("2027-07-05T07:00:00Z", true),
            ("2027-07-05T16:59:00Z", true),
            ("2027-07-05T17:00:00Z", false),
        ],
    );
}

#[test]
fn a_window_to_24_00_runs_to_the_end_of_the_day() {
    check(
        window("UTC", &["sat"], "20:00", "24:00"),
        &[
            ("2027-01-09T19:59:59Z", false),
            ("2027-01-09T20:00:00Z", true),
            ("2027-01-09T23:59:59.999Z", true),
            ("2027-01-10T00:00:00Z", false),
        ],
    );
    check(
        window("UTC", &["sun"], "00:00", "24:00"),
        &[("2027-01-09T23:59:59Z", false), ("2027-01-10T00:00:00Z", true), ("2027-01-10T23:59:00Z", true), ("2027-01-11T00:00:00Z", false)],
    );
}

#[test]
fn a_window_over_midnight_belongs_to_the_day_it_starts_on() {
    // 2027-01-07 is a Thursday, 01-08 Friday, 01-09 Saturday, 01-10 Sunday.
    check(
        window("UTC", &["fri"], "22:00", "06:00"),
        &[
            ("2027-01-08T03:00:00Z", false), // Friday morning: the night from Thursday, not listed
            ("2027-01-08T21:59:59Z", false),
            ("2027-01-08T22:00:00Z", true),
            ("2027-01-09T03:00:00Z", true), // Saturday morning, Friday's night
            ("2027-01-09T05:59:59Z", true),
            ("2027-01-09T06:00:00Z", false),
            ("2027-01-09T22:00:00Z", false), // Saturday evening
            ("2027-01-10T03:00:00Z", false), // Sunday morning
        ],
    );
    check(
        window("UTC", &["sat", "fri"], "22:00", "06:00"),
        &[("2027-01-09T12:00:00Z", false), ("2027-01-09T23:00:00Z", true), ("2027-01-10T03:00:00Z", true), ("2027-01-10T06:00:00Z", false)],
    );
    // Sunday night runs into Monday morning.
    check(window("UTC", &["sun"], "23:00", "01:00"), &[("2027-01-10T23:30:00Z", true), ("2027-01-11T00:30:00Z", true), ("2027-01-05T00:30:00Z", false)]);
}

#[test]
fn an_inverted_window_is_active_outside_its_hours() {
    let mut after_hours = window("Europe/London", &WEEKDAYS, "08:00", "18:00");
    after_hours["invert"] = json!(true);
    check(
        after_hours,
        &[
            ("2027-01-04T07:59:00Z", true),
            ("2027-01-04T08:00:00Z", false),
            ("2027-01-04T17:59:00Z", false),
            ("2027-01-04T18:00:00Z", true),
            ("2027-01-09T12:00:00Z", true),
        ],
    );
}

#[test]
fn a_list_is_active_when_any_window_is() {
    check(
        json!([
            window("Europe/London", &WEEKDAYS, "08:00", "18:00"),
            window("America/New_York", &["sat", "sun"], "10:00", "14:00"),
        ]),
        &[
            ("2027-01-04T09:00:00Z", true),  // Monday in London
            ("2027-01-04T20:00:00Z", false), // Monday evening
            ("2027-01-09T14:59:00Z", false), // Saturday 09:59 in New York (EST, UTC-5)
            ("2027-01-09T15:00:00Z", true),
            ("2027-01-10T18:59:00Z", true),
            ("2027-01-10T19:00:00Z", false),
        ],
    );
}

#[test]
fn a_window_from_inside_the_spring_forward_gap_starts_when_the_clock_passes_it() {
    // Europe/London 2027-03-28 (Sunday): 01:00 GMT becomes 02:00 BST at 01:00 UTC; 01:30 never
    // happens, so a window from 01:30 starts at 02:00 BST.
    check(
        window("Europe/London", &["sun"], "01:30", "03:00"),
        &[
            ("2027-03-28T00:59:59Z", false), // 00:59 GMT
            ("2027-03-28T01:00:00Z", true),  // 02:00 BST
            ("2027-03-28T01:59:00Z", true),  // 02:59 BST
            ("2027-03-28T02:00:00Z", false), // 03:00 BST
        ],
    );
    // Office hours that day start at 08:00 BST = 07:00 UTC.
    check(window("Europe/London", &["sun"], "08:00", "18:00"), &[("2027-03-28T06:59:00Z", false), ("2027-03-28T07:00:00Z", true), ("2027-03-28T17:00:00Z", false)]);
    // America/New_York 2027-03-14 (Sunday): 02:00 EST becomes 03:00 EDT at 07:00 UTC.
    check(
        window("America/New_York", &["sun"], "02:30", "04:00"),
        &[
            ("2027-03-14T06:59:59Z", false), // 01:59 EST
            ("2027-03-14T07:00:00Z", true),  // 03:00 EDT
            ("2027-03-14T07:59:00Z", true),
            ("2027-03-14T08:00:00Z", false), // 04:00 EDT
        ],
    );
    // A Saturday night window that ends inside the gap ends when the clock jumps over its end.
    check(
        window("America/New_York", &["sat"], "23:00", "02:30"),
        &[("2027-03-14T04:00:00Z", true), ("2027-03-14T06:59:00Z", true), ("2027-03-14T07:00:00Z", false)],
    );
}

#[test]
fn a_wall_clock_time_that_happens_twice_at_fall_back_is_inside_both_times() {
    // Europe/London 2027-10-31 (Sunday): 02:00 BST becomes 01:00 GMT at 01:00 UTC, so 01:00–01:59
    // local happens at 00:00–00:59 UTC and again at 01:00–01:59 UTC.
    check(
        window("Europe/London", &["sun"], "01:00", "02:00"),
        &[
            ("2027-10-30T23:59:59Z", false), // 00:59 BST
            ("2027-10-31T00:00:00Z", true),  // 01:00 BST
            ("2027-10-31T00:59:00Z", true),
            ("2027-10-31T01:00:00Z", true), // 01:00 GMT
            ("2027-10-31T01:59:00Z", true),
            ("2027-10-31T02:00:00Z", false), // 02:00 GMT
        ],
    );
    // America/New_York 2027-11-07 (Sunday): 02:00 EDT becomes 01:00 EST at 06:00 UTC.
    check(
        window("America/New_York", &["sun"], "01:15", "01:45"),
        &[
            ("2027-11-07T05:14:00Z", false),
            ("2027-11-07T05:15:00Z", true), // 01:15 EDT
            ("2027-11-07T05:50:00Z", false),
            ("2027-11-07T06:15:00Z", true), // 01:15 EST
            ("2027-11-07T06:44:59Z", true),
            ("2027-11-07T06:45:00Z", false),
        ],
    );
}

#[test]
fn zones_far_from_utc_use_their_own_local_day() {
    // Pacific/Auckland in January is NZDT (UTC+13): Monday 08:00 is Sunday 19:00 UTC.
    check(
        window("Pacific/Auckland", &["mon"], "08:00", "18:00"),
        &[
            ("2027-01-03T18:59:00Z", false),
            ("2027-01-03T19:00:00Z", true),
            ("2027-01-04T04:59:00Z", true),
            ("2027-01-04T05:00:00Z", false),
            ("2027-01-04T19:00:00Z", false), // Tuesday 08:00 there
        ],
    );
    // Asia/Kolkata is UTC+05:30, no DST.
    check(
        window("Asia/Kolkata", &["mon"], "09:00", "17:30"),
        &[("2027-01-04T03:29:00Z", false), ("2027-01-04T03:30:00Z", true), ("2027-01-04T11:59:59Z", true), ("2027-01-04T12:00:00Z", false)],
    );
    // Sunday 22:00 UTC is already Monday 03:30 in Kolkata.
    check(window("Asia/Kolkata", &["mon"], "00:00", "06:00"), &[("2027-01-03T22:00:00Z", true), ("2027-01-04T00:29:00Z", true), ("2027-01-04T00:30:00Z", false)]);
}

#[test]
fn the_stored_json_keeps_the_clients_shape_in_canonical_form() {
    let single = hours(json!({"to": "24:00", "days": ["FRI", "mon", "fri", "Wed"], "from": "08:30", "timezone": "europe/london", "invert": false}));
    assert_eq!(single.to_json(), json!({"timezone": "Europe/London", "days": ["mon", "wed", "fri"], "from": "08:30", "to": "24:00"}));
    assert_eq!(serde_json::to_string(&single.to_json()).unwrap(), r#"{"timezone":"Europe/London","days":["mon","wed","fri"],"from":"08:30","to":"24:00"}"#);

    let listed = hours(json!([{"timezone": "UTC", "days": ["sun"], "from": "22:00", "to": "06:00", "invert": true}]));
    assert_eq!(listed.to_json(), json!([{"timezone": "UTC", "days": ["sun"], "from": "22:00", "to": "06:00", "invert": true}]));

    // What is stored parses back to the same thing.
    for parsed in [single, listed] {
        assert_eq!(hours(parsed.to_json()).to_json(), parsed.to_json());
    }
}

#[test]
fn the_description_is_one_line_people_can_read() {
    let cases = [
        (window("Europe/London", &WEEKDAYS, "08:00", "18:00"), "Mon–Fri 08:00–18:00 Europe/London"),
        (json!({"timezone": "Europe/London", "days": WEEKDAYS, "from": "08:00", "to": "18:00", "invert": true}), "outside Mon–Fri 08:00–18:00 Europe/London"),
        (window("UTC", &["sun", "sat"], "10:00", "24:00"), "Sat, Sun 10:00–24:00 UTC"),
        (window("UTC", &["mon", "wed", "fri"], "09:00", "10:00"), "Mon, Wed, Fri 09:00–10:00 UTC"),
        (window("UTC", &["fri"], "22:00", "06:00"), "Fri 22:00–06:00 (next day) UTC"),
        (window("UTC", &["fri", "sat", "sun", "mon"], "00:00", "24:00"), "Fri–Mon 00:00–24:00 UTC"),
        (window("UTC", &["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "00:00", "01:00"), "Mon–Sun 00:00–01:00 UTC"),
        (
            json!([window("Europe/London", &WEEKDAYS, "08:00", "18:00"), window("America/New_York", &["sat"], "10:00", "14:00")]),
            "Mon–Fri 08:00–18:00 Europe/London or Sat 10:00–14:00 America/New_York",
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(hours(value).describe(), expected);
    }
}

#[test]
fn every_malformed_field_is_refused_with_its_path() {
    let ok = || window("Europe/London", &WEEKDAYS, "08:00", "18:00");
    let with = |key: &str, value: Value| {
        let mut window = ok();
        window[key] = value;
        window
    };
    let without = |key: &str| {
        let mut window = ok();
        window.as_object_mut().unwrap().remove(key);
        window
    };
    let cases = [
        (with("timezone", json!("Europe/Londres")), "active_hours.timezone", "IANA"),
        (with("timezone", json!("GMT+1")), "active_hours.timezone", "not a time zone"),
        (with("timezone", json!(1)), "active_hours.timezone", "string"),
        (without("timezone"), "active_hours.timezone", "required"),
        (with("from", json!("8:00")), "active_hours.from", "HH:MM"),
        (with("from", json!("08:00:00")), "active_hours.from", "HH:MM"),
        (with("from", json!("08h00")), "active_hours.from", "HH:MM"),
        (with("from", json!("25:00")), "active_hours.from", "00:00 to 23:59"),
        (with("from", json!("24:00")), "active_hours.from", "only for `to`"),
        (with("from", json!("12:60")), "active_hours.from", "not a time"),
        (with("from", json!(800)), "active_hours.from", "string"),
        (without("from"), "active_hours.from", "required"),
        (with("to", json!("24:01")), "active_hours.to", "00:00 to 24:00"),
        (with("to", json!("25:00")), "active_hours.to", "not a time"),
        (without("to"), "active_hours.to", "required"),
        (with("to", json!("08:00")), "active_hours.to", "same as `from`"),
        (with("days", json!([])), "active_hours.days", "at least one day"),
        (with("days", json!("mon")), "active_hours.days", "array"),
        (without("days"), "active_hours.days", "required"),
        (with("days", json!(["mon", "funday"])), "active_hours.days[1]", "not a day"),
        (with("days", json!(["monday"])), "active_hours.days[0]", "mon, tue"),
        (with("days", json!([1])), "active_hours.days[0]", "not a day"),
        (with("invert", json!("yes")), "active_hours.invert", "true or false"),
        (with("start", json!("08:00")), "active_hours.start", "not a field"),
        (json!("Mon–Fri 08:00–18:00"), "active_hours", "window"),
        (json!(null), "active_hours", "window"),
        (json!([]), "active_hours", "at least one window"),
        (json!(vec![ok(); MAX_WINDOWS + 1]), "active_hours", "limit is 16"),
        (json!([ok(), "weekends"]), "active_hours[1]", "object"),
        (json!([ok(), with("timezone", json!("Mars/Olympus_Mons"))]), "active_hours[1].timezone", "Europe/London"),
        (json!([ok(), ok(), without("days")]), "active_hours[2].days", "required"),
        (json!([with("extra", json!(1))]), "active_hours[0].extra", "`timezone`"),
    ];
    for (value, field, says) in cases {
        let error = ActiveHours::parse(&value, "active_hours").map(|_| ()).unwrap_err();
        assert_eq!(error.field, field, "{value}");
        assert!(error.message.contains(says), "{value}: {:?} should say {says:?}", error.message);
    }
    // The limits themselves are accepted.
    assert!(ActiveHours::parse(&json!(vec![ok(); MAX_WINDOWS]), "active_hours").is_ok());
    assert!(ActiveHours::parse(&with("to", json!("24:00")), "active_hours").is_ok());
    assert!(ActiveHours::parse(&with("from", json!("23:59")), "active_hours").is_ok());
}
