//! A cheap check a `regex` leaf makes before it runs its regex: the literals every whole match
//! must start with and end with, found once when the rule is saved (regex-syntax's literal
//! extractor, the one the regex crate builds its own prefilters from). Rules' patterns are
//! mostly of the form `.*@gmail\.com` or `[^@]+@(?:a\.net|b\.com)`; a value that cannot end
//! with `.com` or start as the pattern must is refused without a regex search, which is most of
//! a rule check's cost. Never refuses a value the regex matches: a prefix or suffix set that the
//! extractor cannot bound (an unbounded class, a case-insensitive run it gave up on) is not kept.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::Hir;

/// The required starts and ends of a whole match; `None`: any.
#[derive(Debug, Clone, Default)]
pub struct Affixes {
    prefixes: Option<Vec<Vec<u8>>>,
    suffixes: Option<Vec<Vec<u8>>>,
}

impl Affixes {
    /// For a pattern anchored at both ends, as the router compiles it.
    pub fn of(anchored: &Hir) -> Self {
        let required = |kind: ExtractKind| {
            let seq = Extractor::new().kind(kind).extract(anchored);
            let literals: Vec<Vec<u8>> = seq.literals()?.iter().map(|l| l.as_bytes().to_vec()).collect();
            // An empty literal (or none at all, for a pattern that never matches) bounds nothing.
            (!literals.is_empty() && literals.iter().all(|l| !l.is_empty())).then_some(literals)
        };
        Self { prefixes: required(ExtractKind::Prefix), suffixes: required(ExtractKind::Suffix) }
    }

    /// Whether a whole match of the pattern could be `text` (false: it certainly is not).
    pub fn admits(&self, text: &str) -> bool {
        let text = text.as_bytes();
        self.prefixes.as_ref().is_none_or(|p| p.iter().any(|l| text.starts_with(l)))
            && self.suffixes.as_ref().is_none_or(|s| s.iter().any(|l| text.ends_with(l)))
    }
}

#[cfg(test)]
mod tests {
    use super::Affixes;

    fn anchored(pattern: &str) -> (Affixes, regex::Regex) {
        let anchored = format!("^(?:{pattern})$");
        (Affixes::of(&regex_syntax::Parser::new().parse(&anchored).unwrap()), regex::Regex::new(&anchored).unwrap())
    }

    #[test]
    fn a_value_that_cannot_end_or_start_as_the_pattern_is_refused_without_the_regex() {
        let (gmail, regex) = anchored(r".*@(?:gmail|outlook)\.com");
        assert!(!gmail.admits("outsider@example.net") && !gmail.admits("x@evil.com"));
        assert!(gmail.admits("ann@gmail.com"));
        assert!(gmail.admits("two\nlines@gmail.com") && !regex.is_match("two\nlines@gmail.com"), "a candidate is left to the regex");
        let (partners, _) = anchored(r"[^@]+@(?:example\.net|partner-3\.com)");
        assert!(partners.admits("guest@example.net") && !partners.admits("guest@example.org"));
        let (site, _) = anchored(r"https://contoso\.sharepoint\.com/sites/.*");
        assert!(!site.admits("https://fabrikam.sharepoint.com/sites/HR") && site.admits("https://contoso.sharepoint.com/sites/HR"));
    }

    #[test]
    fn it_never_refuses_a_value_the_regex_matches() {
        let patterns = [
            r".*@(?:gmail|outlook|yahoo|hotmail|mail7)\.com", r"[^@]+@(?:example\.net|partner-3\.com)", r"edit|full_control",
            r"high|critical", r".*\.(?:xlsx|docx|pdf|ext1)", r"(?i)Finance.*", r"(?i:ÉTÉ)", r"a*", r"", r"x?y?", r"[a-c]{2,3}z",
            r"\d+", r"Straße|STRASSE", r".*", r"(?:ab)+", r"é.*ü", r"(?m)^a$", r"\bword\b.*", r"[^x]",
        ];
        let texts = [
            "", "a", "aa", "ab", "abab", "x", "y", "xy", "z", "acz", "bbcz", "edit", "full_control", "high", "critical", "Edit",
            "outsider@example.net", "ann@gmail.com", "guest@example.net", "guest@partner-3.com", "Q3.xlsx", "r.ext1", "finance report",
            "FINANCE", "été", "ÉTÉ", "Été", "123", "Straße", "STRASSE", "éxü", "é", "word and more", "ü", "\n",
        ];
        for pattern in patterns {
            let (affixes, regex) = anchored(pattern);
            for text in texts {
                assert!(affixes.admits(text) || !regex.is_match(text), "{pattern:?} refused {text:?}, which it matches");
            }
        }
    }
}
