//! Slack `mrkdwn`: event data is text, never markup. The people an event is about write much of
//! it (file names, display names, site URLs, the keys of `data`), so nothing it says may become a
//! mention (`<!channel>`, `<!here>`, `<@U123>`, `<#C123>`, `<!subteam^…>`) or a link whose text
//! hides where it goes.
//!
//! Slack reads `&`, `<` and `>` as control characters and has no other escape: [`slack_escape`]
//! turns them into `&amp;`, `&lt;` and `&gt;`, so a `<` from an event never opens anything.
//! `*`, `_`, `~` and `` ` `` cannot be escaped in `mrkdwn` and may still style a value; they
//! cannot make a link or a mention. The only `<…>` in a message is [`slack_link`]'s, whose text
//! is exactly the URL it opens. The renderer also marks its `mrkdwn` texts `verbatim`, so Slack
//! does not turn a bare URL, `#channel` or `@name` in event data into a link or a mention.
//!
//! Every `mrkdwn` text built from an event must go through these functions: the message fields, the
//! context line, the `text` fallback, and the summaries of grouped notifications (one message for
//! many events: `<count> × <title> — <key values>`, up to 10 items, then "and N more";
//! `slack/group.rs`).

use super::{breaks_line, link_target};

/// `text` with Slack's control characters escaped (`&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`)
/// and on one line (a line break becomes a space, so a value cannot pose as another field).
pub fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// [`slack_escape`], cut to at most `max` characters (the `…` included), never inside an
/// escaped character: a cut `&am…` would show a broken entity.
pub fn slack_escape_cut(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max.saturating_mul(4)));
    let mut count = 0;
    // Where the text ends if it has to be cut: the longest prefix that leaves room for the `…`.
    let mut last_fit = 0;
    for c in text.chars() {
        let width = escaped(c).map_or(1, str::len);
        if count + width > max {
            out.truncate(last_fit);
            if max > 0 {
                out.push('…');
            }
            return out;
        }
        push_escaped(&mut out, c);
        count += width;
        if count < max {
            last_fit = out.len();
        }
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match escaped(c) {
        Some(piece) => out.push_str(piece),
        None => out.push(c),
    }
}

/// The escaped form of one character (ASCII, so its length counts characters), `None` when it
/// stands for itself.
fn escaped(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        c if breaks_line(c) => Some(" "),
        _ => None,
    }
}

/// `<url|url>`: a link whose text is exactly the URL it opens, or `None` when `url` is not a
/// plain https URL (see [`link_target`]). Inside the link `&` is `&amp;` (Slack reads it back as
/// `&`), and `|`, `<` and `>`, which would split or end the link, are percent-encoded (`%7C`,
/// `%3C`, `%3E`) in both halves, so the text shown is the address opened, character for character.
pub fn slack_link(url: &str) -> Option<String> {
    link_target(url)?;
    let mut inside = String::with_capacity(url.len() + 8);
    for c in url.chars() {
        match c {
            '&' => inside.push_str("&amp;"),
            '|' => inside.push_str("%7C"),
            '<' => inside.push_str("%3C"),
            '>' => inside.push_str("%3E"),
            _ => inside.push(c),
        }
    }
    Some(format!("<{inside}|{inside}>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_control_characters_become_entities_and_lines_join() {
        assert_eq!(slack_escape("<!channel> & <@U123>"), "&lt;!channel&gt; &amp; &lt;@U123&gt;");
        assert_eq!(slack_escape("already &lt;escaped&gt;"), "already &amp;lt;escaped&amp;gt;");
        assert_eq!(slack_escape("one\ntwo\r\nthree"), "one two  three");
        assert_eq!(slack_escape("Résumé 📄 *bold*"), "Résumé 📄 *bold*");
    }

    #[test]
    fn a_cut_never_splits_an_entity() {
        assert_eq!(slack_escape_cut("a&b", 10), "a&amp;b");
        assert_eq!(slack_escape_cut("ab&cd", 4), "ab…");
        assert_eq!(slack_escape_cut("abcdef", 6), "abcdef");
        assert_eq!(slack_escape_cut("abcdefg", 6), "abcde…");
        assert_eq!(slack_escape_cut("&&&", 0), "");
        assert!(slack_escape_cut(&"<".repeat(1000), 2000).chars().count() <= 2000);
        assert!(slack_escape_cut(&"<".repeat(1000), 2000).ends_with("&lt;…"));
    }

    #[test]
    fn a_link_shows_exactly_where_it_goes() {
        assert_eq!(
            slack_link("https://contoso.sharepoint.com/sites/Finance").unwrap(),
            "<https://contoso.sharepoint.com/sites/Finance|https://contoso.sharepoint.com/sites/Finance>"
        );
        let disguised = "https://evil.example/login?x=|https://contoso.sharepoint.com/sites/Finance";
        assert_eq!(
            slack_link(disguised).unwrap(),
            "<https://evil.example/login?x=%7Chttps://contoso.sharepoint.com/sites/Finance|https://evil.example/login?x=%7Chttps://contoso.sharepoint.com/sites/Finance>"
        );
        assert_eq!(slack_link("https://a.example/?q=1&r=2").unwrap(), "<https://a.example/?q=1&amp;r=2|https://a.example/?q=1&amp;r=2>");
        // Not in its normal form (a parser would encode `<` and `>`): shown as text, not linked.
        assert_eq!(slack_link("https://a.example/?q=1&r=<2>"), None);
        assert_eq!(slack_link("http://contoso.sharepoint.com/"), None);
        assert_eq!(slack_link("https://contoso.sharepoint.com@evil.example/"), None);
        assert_eq!(slack_link("https://evil.example/\n|x"), None);
    }
}
