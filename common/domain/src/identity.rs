//! Who is asking: the requester as a verified ID token describes them.
//!
//! The `user` (default: the `sub` claim) is the stable key: grants, reply queues and revocations are
//! bound to it. The display name is what people read next to it (in `portcullis pending`, grant
//! replies and audit events). It comes only from the verified token's claims (or, for a trusted
//! producer's relay, from the user itself), and it is sanitized here because whoever controls a
//! profile at the IdP chooses it: at most [`MAX_DISPLAY_NAME_CHARS`] characters, no control or
//! invisible formatting characters (bidi overrides, zero-width), whitespace collapsed.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Longest display name kept, in characters (longer ones are cut and end with `…`).
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// The claims tried for a display name, in order, unless `identity.display_name_claims` says otherwise.
pub const DEFAULT_DISPLAY_NAME_CLAIMS: [&str; 3] = ["preferred_username", "email", "name"];

/// A verified requester. Only an identity adapter (which checked a token's signature and claims) or
/// a trusted producer's relay builds one; nothing in a message body can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    /// The configured user claim (default `sub`).
    pub user: String,
    pub team: Option<String>,
    pub groups: Vec<String>,
    /// When the token was issued (`iat`), or when the producer relayed the request.
    pub issued_at: DateTime<Utc>,
    /// The trusted producer that relayed the request, when it was not the person's own.
    pub via: Option<String>,
    /// What people read next to `user`: see [`display_name_from_claims`]. Never a key.
    pub display_name: String,
}

impl Identity {
    /// Whether the identity is in any of `groups`.
    pub fn in_any_group(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }
}

/// The display name a verified token's `claims` give: the first of `preferred` (in order) that holds
/// a string which is still non-empty once sanitized, else `user` (the stable key, itself sanitized
/// for display).
pub fn display_name_from_claims(claims: &Map<String, Value>, preferred: &[String], user: &str) -> String {
    preferred
        .iter()
        .filter_map(|claim| claims.get(claim).and_then(Value::as_str))
        .find_map(sanitize_display_name)
        .or_else(|| sanitize_display_name(user))
        .unwrap_or_else(|| "?".to_owned())
}

/// `raw` made safe to print in a terminal, a chat message or a log: control characters and invisible
/// formatting characters removed, runs of whitespace as one space, trimmed, at most
/// [`MAX_DISPLAY_NAME_CHARS`] characters. `None` when nothing is left.
pub fn sanitize_display_name(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else if !c.is_control() && !is_invisible_format(c) {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    if out.is_empty() {
        return None;
    }
    if out.chars().count() > MAX_DISPLAY_NAME_CHARS {
        out = out.chars().take(MAX_DISPLAY_NAME_CHARS - 1).collect::<String>().trim_end().to_owned();
        out.push('…');
    }
    Some(out)
}

/// Unicode format characters that change how the text around them reads without showing themselves:
/// bidirectional overrides and isolates (a name that prints as someone else's), zero-width
/// characters, the BOM and soft hyphen.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    proptest::proptest! {
        #![proptest_config(crate::properties::config(1024))]

        /// Whatever an IdP profile holds: a sanitized name is short, printable, visibly what it
        /// says (no invisible formatting), single-spaced and trimmed, and sanitizing it again
        /// changes nothing.
        #[test]
        fn display_names_are_bounded_printable_and_stable(
            raw in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                "[a-z \t\n\u{202E}\u{200B}\u{FEFF}\u{00AD}\u{1b}é山]{0,200}",
            ],
        ) {
            if let Some(name) = sanitize_display_name(&raw) {
                proptest::prop_assert!(name.chars().count() <= MAX_DISPLAY_NAME_CHARS);
                proptest::prop_assert!(!name.chars().any(|c| c.is_control() || is_invisible_format(c)), "{:?}", name);
                proptest::prop_assert!(!name.starts_with(char::is_whitespace) && !name.ends_with(char::is_whitespace));
                proptest::prop_assert!(!name.contains("  "));
                proptest::prop_assert_eq!(sanitize_display_name(&name), Some(name.clone()));
            }
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().expect("an object").clone()
    }

    fn order(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_first_configured_claim_that_holds_a_usable_name_wins() {
        let defaults = order(&DEFAULT_DISPLAY_NAME_CLAIMS);
        let all =
            claims(json!({"sub": "u-7f3", "preferred_username": "alice", "email": "a@x.test", "name": "Alice L"}));
        assert_eq!(display_name_from_claims(&all, &defaults, "u-7f3"), "alice");
        assert_eq!(display_name_from_claims(&all, &order(&["name", "email"]), "u-7f3"), "Alice L");
        let blank = claims(json!({"preferred_username": " \u{202E} ", "email": 7, "name": "Alice L"}));
        assert_eq!(
            display_name_from_claims(&blank, &defaults, "u-7f3"),
            "Alice L",
            "blank, invisible or not text: next"
        );
    }

    #[test]
    fn without_any_the_user_key_is_shown() {
        let none = claims(json!({"sub": "u-7f3", "nickname": "al"}));
        assert_eq!(display_name_from_claims(&none, &order(&DEFAULT_DISPLAY_NAME_CLAIMS), "u-7f3"), "u-7f3");
        assert_eq!(display_name_from_claims(&none, &[], "u-7f3"), "u-7f3", "an empty list: always the user");
        assert_eq!(display_name_from_claims(&none, &[], "\u{7}"), "?", "nothing printable at all");
    }

    #[test]
    fn display_names_lose_control_and_invisible_characters_and_are_bounded() {
        assert_eq!(sanitize_display_name("  Alice\n\t Liddell \u{1b}[31m").as_deref(), Some("Alice Liddell [31m"));
        assert_eq!(sanitize_display_name("admin\u{202E}nimda").as_deref(), Some("adminnimda"), "no bidi override");
        assert_eq!(sanitize_display_name("a\u{200B}b\u{FEFF}c\u{00AD}").as_deref(), Some("abc"));
        assert_eq!(sanitize_display_name("\u{0}\r\n"), None);
        let long = sanitize_display_name(&"é".repeat(500)).expect("a name");
        assert_eq!(long.chars().count(), MAX_DISPLAY_NAME_CHARS);
        assert!(long.ends_with('…') && long.starts_with("éé"), "{long}");
        assert_eq!(sanitize_display_name("Zoë 山田").as_deref(), Some("Zoë 山田"), "letters of any script stay");
    }
}
