//! Adaptive Card Markdown (Teams): event data is text, never markup. A `TextBlock` and a
//! `FactSet`'s titles and values are read as Markdown (`**bold**`, `_italic_`, `[text](url)`,
//! lists at a line's start), and the people an event is about write much of it, so a value such
//! as `[Open Contoso SharePoint](https://evil.example/phish)` must show as those characters, not
//! as a link whose text hides where it goes. A link is only ever the card's `Action.OpenUrl`,
//! titled with the host it opens.
//!
//! The scheme, and why: a backslash before each character that can start inline markup
//! (`` \ * _ ~ ` [ ] ( ) < > & ``), and before a list or heading marker at the start of the value.
//! - It reads as the original: Teams shows `\*` as `*`, and characters that cannot start markup
//!   where they stand are left alone (the `.` of `forecast.xlsx`, the `-` of a date, `#`, `!`, `|`
//!   inside a line), so names, paths and addresses stay as people know them.
//! - It holds even where a client shows the backslashes instead of honouring them (older Teams
//!   mobile apps did): every `]` and `(` follows a backslash, so `](` never appears and no
//!   `[text](url)` can form, and no `*`, `_` or `~` stands bare next to another.
//! - `&` is escaped too, so `&lt;` or `&#91;` in an event stays those characters rather than an
//!   entity Teams decodes, and `(`, `)` keep `{{DATE(…)}}` from being read as a card function.
//! - Line breaks become spaces: each value is one line, so list, heading and quote markers can
//!   only stand at its start, where they are escaped.
//!
//! Every Markdown text built from an event goes through [`teams_escape`], the summaries of
//! grouped notifications (one card for many events, `teams/group.rs`) included.

use super::breaks_line;

/// `text` as literal Adaptive Card Markdown, on one line (see the module's comment for the scheme).
pub fn teams_escape(text: &str) -> String {
    /// Where in the line a character stands: list and heading markers only count at its start.
    #[derive(PartialEq)]
    enum At {
        /// Only spaces so far.
        Start,
        /// Spaces, then digits: a `.` or `)` after them would number a list.
        Digits,
        Inline,
    }
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut at = At::Start;
    let mut chars = text.chars().map(|c| if breaks_line(c) { ' ' } else { c }).peekable();
    while let Some(c) = chars.next() {
        let list_number = at == At::Digits && c == '.' && chars.peek().is_none_or(|next| next.is_whitespace());
        let marker = at == At::Start && matches!(c, '-' | '+' | '#' | '=');
        if list_number || marker || matches!(c, '\\' | '*' | '_' | '~' | '`' | '[' | ']' | '(' | ')' | '<' | '>' | '&') {
            out.push('\\');
        }
        out.push(c);
        at = match (at, c) {
            (At::Start, ' ' | '\t') => At::Start,
            (At::Start | At::Digits, '0'..='9') => At::Digits,
            _ => At::Inline,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_in_event_data_stays_literal_text() {
        assert_eq!(
            teams_escape("[Open Contoso SharePoint](https://evil.example/phish)"),
            r"\[Open Contoso SharePoint\]\(https://evil.example/phish\)"
        );
        assert_eq!(teams_escape("**urgent** _now_ ~~gone~~ `code`"), r"\*\*urgent\*\* \_now\_ \~\~gone\~\~ \`code\`");
        assert_eq!(teams_escape(r"C:\Users\<at>bob</at> &lt;"), r"C:\\Users\\\<at\>bob\</at\> \&lt;");
        assert_eq!(teams_escape("line one\n- item\r\n# heading"), "line one - item  # heading");
    }

    #[test]
    fn list_and_heading_markers_are_escaped_only_where_they_start_a_line() {
        assert_eq!(teams_escape("- item"), r"\- item");
        assert_eq!(teams_escape("  + item"), r"  \+ item");
        assert_eq!(teams_escape("# Title"), r"\# Title");
        assert_eq!(teams_escape("1. first"), r"1\. first");
        assert_eq!(teams_escape("12) twelfth"), r"12\) twelfth");
        assert_eq!(teams_escape("1."), r"1\.");
        // Ordinary text reads as it was.
        assert_eq!(teams_escape("Shared Documents/Q3 forecast.xlsx"), "Shared Documents/Q3 forecast.xlsx");
        assert_eq!(teams_escape("2026-11-28T15:36:08Z"), "2026-11-28T15:36:08Z");
        assert_eq!(teams_escape("90.0 GiB of 100.0 GiB"), "90.0 GiB of 100.0 GiB");
        assert_eq!(teams_escape("a - b #3 !"), "a - b #3 !");
        assert_eq!(teams_escape("Ünïcødé 🏢"), "Ünïcødé 🏢");
    }
}
