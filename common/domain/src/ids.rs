//! Identifiers, parsed once where they enter and typed from then on.
//!
//! Each newtype can only hold a valid value: [`AccountId`] is 12 digits, [`TemplateName`] a letter then
//! up to 63 letters, digits, `_` or `-`, and so on. They deserialize through `parse`, so a message with
//! a malformed id is refused as `bad_request` while it is read, and code further in never re-checks.

use std::borrow::Borrow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that is not a valid identifier of its kind; the message says what one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidId(pub &'static str);

macro_rules! string_id {
    (
        $(#[$doc:meta])*
        $name:ident, $schema_name:literal, pattern = $pattern:literal, invalid = $message:literal,
        valid = |$s:ident| $valid:expr
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// What a valid value looks like (the refusal message).
            pub const EXPECTED: &'static str = $message;
            /// The regular expression a valid value matches (also in the JSON Schema).
            pub const PATTERN: &'static str = $pattern;

            /// Parse `s`, or say what a valid value looks like.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                let $s = s;
                if $valid { Ok(Self(s.to_owned())) } else { Err(InvalidId($message)) }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, so widths and alignment in format strings apply.
                f.pad(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $schema_name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": $pattern, "description": $message })
            }
        }
    };
}

string_id!(
    /// A 12-digit AWS account id.
    AccountId, "AccountId", pattern = "^[0-9]{12}$", invalid = "account must be a 12-digit AWS account id",
    valid = |s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
);

string_id!(
    /// A statement template's name: a letter, then up to 63 letters, digits, `_` or `-`.
    TemplateName, "TemplateName", pattern = "^[A-Za-z][A-Za-z0-9_-]{0,63}$",
    invalid = "a template name is a letter, then up to 63 letters, digits, '_' or '-'",
    valid = |s| (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
);

string_id!(
    /// A client-chosen message id: 1–128 of `A-Z a-z 0-9 . _ : -`.
    MessageId, "MessageId", pattern = "^[A-Za-z0-9._:-]{1,128}$",
    invalid = "message_id must be 1 to 128 of A-Z, a-z, 0-9, '.', '_', ':' or '-'",
    valid = |s| (1..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
);

string_id!(
    /// A grant id: `g-` and 32 lowercase hexadecimal digits (see [`crate::grant::Grant::id_for`]).
    GrantId, "GrantId", pattern = "^g-[0-9a-f]{32}$", invalid = "a grant id is `g-` followed by 32 hexadecimal digits",
    valid = |s| s.len() == 34 && s.starts_with("g-") && s[2..].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
);

impl GrantId {
    /// Wrap a value built by [`crate::grant::Grant::id_for`], which is valid by construction.
    pub(crate) fn from_generated(s: String) -> Self {
        debug_assert!(Self::parse(&s).is_ok(), "{s}");
        Self(s)
    }
}

/// The URL of an SQS queue, split into its parts: `scheme://host[:port]/<account>/<name>`.
///
/// Reply addresses arrive as text; they are parsed here once and compared by parts. A name is at
/// most 80 characters (SQS's limit), checked before anything else looks at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrl {
    url: String,
    /// `scheme://host[:port]`, host lowercased.
    endpoint: String,
    account: AccountId,
    name: String,
}

/// SQS's longest queue name.
pub const MAX_QUEUE_NAME_CHARS: usize = 80;

impl QueueUrl {
    /// Parse an SQS queue URL. `None` when it is not one.
    pub fn parse(url: &str) -> Option<Self> {
        // A URL longer than any real queue URL is not one; refuse before splitting it.
        if url.len() > 2048 {
            return None;
        }
        let (scheme, rest) = url.split_once("://")?;
        if scheme != "https" && scheme != "http" {
            return None;
        }
        let mut parts = rest.split('/');
        let host = parts.next()?;
        let account = parts.next()?;
        let name = parts.next()?;
        if parts.next().is_some() || host.is_empty() || host.contains(['@', '?', '#']) {
            return None;
        }
        // 1–80 of `[A-Za-z0-9_-]`, the last five possibly `.fifo`: SQS's rule, so an encoded or
        // otherwise odd name is no queue at all.
        let stem = name.strip_suffix(".fifo").unwrap_or(name);
        let valid_name = (1..=MAX_QUEUE_NAME_CHARS).contains(&name.len())
            && !stem.is_empty()
            && stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return None;
        }
        Some(Self {
            url: url.to_owned(),
            endpoint: format!("{scheme}://{}", host.to_ascii_lowercase()),
            account: AccountId::parse(account).ok()?,
            name: name.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    pub fn account(&self) -> &AccountId {
        &self.account
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Whether it is a FIFO queue (which takes messages only with a group id).
    pub fn is_fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }
}

impl fmt::Display for QueueUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Strings near `pattern`: matching it, off by a character or a length, or anything.
    fn near(pattern: &'static str) -> impl Strategy<Value = String> {
        let inner = pattern.trim_start_matches('^').trim_end_matches('$');
        prop_oneof![
            inner,
            (inner, any::<prop::sample::Index>(), any::<char>()).prop_map(|(s, at, c)| {
                let mut chars: Vec<char> = s.chars().collect();
                let i = at.index(chars.len() + 1);
                chars.insert(i, c);
                chars.into_iter().collect()
            }),
            (inner, any::<prop::sample::Index>()).prop_map(|(s, at)| {
                let mut chars: Vec<char> = s.chars().collect();
                if !chars.is_empty() {
                    chars.remove(at.index(chars.len()));
                }
                chars.into_iter().collect()
            }),
            any::<String>(),
        ]
    }

    fn agrees_with_pattern<
        T: std::str::FromStr + fmt::Display + Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug,
    >(
        s: &str,
        pattern: &str,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let parsed = s.parse::<T>();
        static COMPILED: std::sync::LazyLock<Vec<(&str, regex::Regex)>> = std::sync::LazyLock::new(|| {
            [AccountId::PATTERN, TemplateName::PATTERN, MessageId::PATTERN, GrantId::PATTERN]
                .map(|p| (p, regex::Regex::new(p).unwrap()))
                .into()
        });
        let regex = &COMPILED.iter().find(|(p, _)| *p == pattern).unwrap().1;
        prop_assert_eq!(parsed.is_ok(), regex.is_match(s), "{:?}", s);
        let json = serde_json::to_string(s).unwrap();
        prop_assert_eq!(serde_json::from_str::<T>(&json).is_ok(), parsed.is_ok());
        if let Ok(id) = parsed {
            prop_assert_eq!(id.to_string(), s);
            prop_assert_eq!(serde_json::to_string(&id).unwrap(), json);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(crate::properties::config(1024))]

        /// Each id accepts exactly the strings its published pattern (the JSON Schema's) matches,
        /// the same through serde, and prints back what it parsed.
        #[test]
        fn ids_accept_exactly_their_pattern(
            account in near(AccountId::PATTERN),
            template in near(TemplateName::PATTERN),
            message in near(MessageId::PATTERN),
            grant in near(GrantId::PATTERN),
        ) {
            agrees_with_pattern::<AccountId>(&account, AccountId::PATTERN)?;
            agrees_with_pattern::<TemplateName>(&template, TemplateName::PATTERN)?;
            agrees_with_pattern::<MessageId>(&message, MessageId::PATTERN)?;
            agrees_with_pattern::<GrantId>(&grant, GrantId::PATTERN)?;
        }

        /// Any text is a queue URL or not, without panicking; one that is splits into parts that
        /// put it back together.
        #[test]
        fn queue_urls_split_into_parts_that_rebuild_them(
            url in prop_oneof![
                any::<String>(),
                "(https?|ftp)://[A-Za-z0-9.:@?#-]{0,12}/[0-9]{11,13}/[A-Za-z0-9_.%/-]{0,84}",
            ],
        ) {
            if let Some(q) = QueueUrl::parse(&url) {
                prop_assert_eq!(q.as_str(), url.as_str());
                let rebuilt = format!("{}/{}/{}", q.endpoint(), q.account(), q.name());
                prop_assert_eq!(rebuilt.to_ascii_lowercase(), url.to_ascii_lowercase());
                prop_assert!((1..=MAX_QUEUE_NAME_CHARS).contains(&q.name().len()));
            }
        }
    }

    #[test]
    fn each_id_accepts_exactly_its_shape() {
        assert!(AccountId::parse("123456789012").is_ok());
        for bad in ["12345678901", "1234567890123", "12345678901a", "", "１２３４５６７８９０１２"] {
            assert_eq!(AccountId::parse(bad), Err(InvalidId(AccountId::EXPECTED)), "{bad}");
        }
        assert!(TemplateName::parse("bucketRead").is_ok());
        assert!(TemplateName::parse(&format!("a{}", "b".repeat(63))).is_ok());
        for bad in ["", "1abc", "a b", "a/b", &"a".repeat(65)] {
            assert!(TemplateName::parse(bad).is_err(), "{bad}");
        }
        assert!(MessageId::parse("7c1d3c1e-4a55:x.y_z").is_ok());
        for bad in ["", "has space", "a#b", &"m".repeat(129)] {
            assert!(MessageId::parse(bad).is_err(), "{bad}");
        }
        assert!(GrantId::parse("g-0123456789abcdef0123456789abcdef").is_ok());
        assert!(GrantId::parse("g-0123456789ABCDEF0123456789abcdef").is_err());
        assert!(GrantId::parse("x-0123456789abcdef0123456789abcdef").is_err());
    }

    #[test]
    fn ids_deserialize_through_parse_and_serialize_as_strings() {
        let ok: AccountId = serde_json::from_str("\"123456789012\"").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"123456789012\"");
        assert_eq!(format!("[{ok:<14}]"), "[123456789012  ]");
        let err = serde_json::from_str::<AccountId>("\"12345\"").unwrap_err().to_string();
        assert!(err.contains("12-digit"), "{err}");
        let map: std::collections::BTreeMap<AccountId, u8> = serde_json::from_str(r#"{"123456789012": 1}"#).unwrap();
        assert_eq!(map.get("123456789012"), Some(&1));
    }

    #[test]
    fn queue_urls_split_into_parts() {
        let q = QueueUrl::parse("http://127.0.0.1:4566/123456789012/stack-reply-abc").unwrap();
        assert_eq!(
            (q.endpoint(), q.account().as_str(), q.name()),
            ("http://127.0.0.1:4566", "123456789012", "stack-reply-abc")
        );
        let upper = QueueUrl::parse("https://SQS.eu-west-1.amazonaws.com/123456789012/q").unwrap();
        assert_eq!(upper.endpoint(), "https://sqs.eu-west-1.amazonaws.com");
        for bad in [
            "ftp://h/123456789012/q",
            "http://h/123456789012/q/extra",
            "http://user@h/123456789012/q",
            "http://h/12345/q",
            "http://h/123456789012/",
            "http://h/123456789012/q?x=1",
            "http://h/123456789012/q%2Fother",
            "http://h/123456789012/q.x",
            "http://h/123456789012/.fifo",
            "not a url",
        ] {
            assert!(QueueUrl::parse(bad).is_none(), "{bad}");
        }
        assert!(QueueUrl::parse("http://h/123456789012/q.fifo").unwrap().is_fifo());
        let long = format!("http://h/123456789012/{}", "q".repeat(MAX_QUEUE_NAME_CHARS + 1));
        assert!(QueueUrl::parse(&long).is_none());
        let huge = format!("http://h/123456789012/{}", "q".repeat(300_000));
        assert!(QueueUrl::parse(&huge).is_none());
    }
}
