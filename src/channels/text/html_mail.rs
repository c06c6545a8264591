//! HTML mail: event data is text, never markup. [`html_escape`] turns every character that HTML
//! reads as markup (`&`, `<`, `>`, `"`, `'`) into its entity, so a principal named
//! `<img src=x onerror=…>` is shown as those characters and nothing loads or runs; controls
//! other than a plain space become spaces, so a value stays on its line.

/// `text` as HTML text (and as a quoted attribute value).
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() || super::breaks_line(c) => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_event_data_becomes_text() {
        assert_eq!(html_escape("<img src=x onerror=alert(1)>"), "&lt;img src=x onerror=alert(1)&gt;");
        assert_eq!(html_escape(r#"a & "b" 'c'"#), "a &amp; &quot;b&quot; &#39;c&#39;");
        assert_eq!(html_escape("line\nbreak\u{2028}x"), "line break x");
        assert_eq!(html_escape("[click](http://evil)"), "[click](http://evil)", "Markdown means nothing in HTML");
    }
}
