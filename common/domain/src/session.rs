//! What an STS session for a person looks like: its name in CloudTrail and its length.
//!
//! `RoleSessionName` and `SourceIdentity` both carry the user, so CloudTrail ties every call made with
//! issued credentials to one person. STS allows 2–64 of `[A-Za-z0-9_+=,.@-]` there, so some user
//! names must be changed; [`sts_name_for`] does it without ever letting two people share a name.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::error::{ErrorCode, RequestError};

/// STS's shortest session.
pub const MIN_SESSION_SECONDS: u64 = 900;
/// STS's longest session (the role's maximum may be lower).
pub const MAX_SESSION_SECONDS: u64 = 43_200;

/// Hex digits of the hash suffix.
const HASH_HEX: usize = 16;

/// A name STS accepts for `RoleSessionName` and `SourceIdentity`: 2–64 of `[A-Za-z0-9_+=,.@-]`.
///
/// A user name that is already such a name is used as it is, unless it *looks like* a changed name
/// (it ends in `.` and 16 hex digits): then, like every name that had to change (other characters,
/// too long or too short), it becomes its cleaned prefix, `.`, and the first 16 hex digits of the
/// SHA-256 of the original. Unchanged names never end like a changed one, so the two sets cannot
/// meet, and two changed names meet only on a 64-bit SHA-256 second preimage: distinct people stay
/// distinct in CloudTrail.
pub fn sts_name_for(user: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if (2..=64).contains(&user.len()) && user.chars().all(allowed) && !looks_hashed(user) {
        return user.to_owned();
    }
    let clean: String = user.chars().take(64).map(|c| if allowed(c) { c } else { '-' }).collect();
    let digest = Sha256::digest(user.as_bytes());
    let suffix = format!(".{}", &hex::encode(digest)[..HASH_HEX]);
    let mut name: String = clean.chars().take(64 - suffix.len()).collect();
    name.push_str(&suffix);
    name
}

/// Whether `name` ends like a name [`sts_name_for`] changed: `.` then 16 lowercase hex digits.
fn looks_hashed(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > HASH_HEX
        && bytes[bytes.len() - HASH_HEX - 1] == b'.'
        && bytes[bytes.len() - HASH_HEX..].iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The session length: the requested duration (default: until the latest grant expires), never past
/// the latest grant's expiry, never above the role's or the configured maximum, and never below STS's
/// 900-second minimum (each statement's own `aws:CurrentTime` condition still ends its access on
/// time when the grant expires sooner).
pub fn session_duration(
    requested: Option<u64>,
    now: DateTime<Utc>,
    latest_expiry: DateTime<Utc>,
    role_max: u64,
    configured_max: u64,
) -> Result<u64, RequestError> {
    if let Some(r) = requested
        && !(MIN_SESSION_SECONDS..=MAX_SESSION_SECONDS).contains(&r)
    {
        return Err(RequestError::new(
            ErrorCode::DurationInvalid,
            format!("duration must be between {MIN_SESSION_SECONDS} and {MAX_SESSION_SECONDS} seconds"),
        ));
    }
    let until_expiry = u64::try_from((latest_expiry - now).num_seconds()).unwrap_or(0);
    let ceiling = role_max.min(configured_max).min(MAX_SESSION_SECONDS);
    let wanted = requested.unwrap_or(until_expiry);
    Ok(wanted.min(until_expiry).min(ceiling).max(MIN_SESSION_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn valid_sts_name(name: &str) -> bool {
        (2..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    }

    #[test]
    fn sts_names() {
        assert_eq!(sts_name_for("alice"), "alice");
        assert_eq!(sts_name_for("alice@example.com"), "alice@example.com");
        let spaced = sts_name_for("alice smith");
        assert!(spaced.starts_with("alice-smith."), "{spaced}");
        assert_ne!(spaced, sts_name_for("alice-smith"));
        let long = sts_name_for(&"x".repeat(100));
        assert_eq!(long.len(), 64);
        assert_eq!(sts_name_for("a").len(), 18);
        assert!(!sts_name_for("aws:root").to_ascii_lowercase().starts_with("aws:"));
        for name in [sts_name_for("Zoë/../x"), sts_name_for("a"), long] {
            assert!(valid_sts_name(&name), "{name}");
        }
    }

    /// The attack: a user literally named like another user's changed name.
    #[test]
    fn a_name_shaped_like_a_hashed_one_is_hashed_too() {
        let hashed_a = sts_name_for("a");
        assert!(looks_hashed(&hashed_a), "{hashed_a}");
        let impostor = sts_name_for(&hashed_a);
        assert_ne!(impostor, hashed_a);
        assert!(valid_sts_name(&impostor));
        // A name that only resembles the shape (uppercase hex, 15 digits) is kept.
        assert_eq!(sts_name_for("a.AF63DC4C8601EC8C"), "a.AF63DC4C8601EC8C");
        assert_eq!(sts_name_for("a.af63dc4c8601ec8"), "a.af63dc4c8601ec8");
    }

    proptest! {
        #![proptest_config(crate::properties::config(2000))]

        /// Always a valid STS name, and distinct users get distinct names, including users whose
        /// names are other users' changed names.
        #[test]
        fn names_are_valid_and_injective(
            a in "[a-z.@ -]{0,70}|[a-z]{1,3}\\.[0-9a-f]{16}",
            b in "[a-z.@ -]{0,70}|[a-z]{1,3}\\.[0-9a-f]{16}",
        ) {
            let (na, nb) = (sts_name_for(&a), sts_name_for(&b));
            prop_assert!(valid_sts_name(&na), "{na}");
            if a != b {
                prop_assert_ne!(&na, &nb);
            }
            // The changed name of a user, used as another user's name, never collides.
            let impostor = sts_name_for(&na);
            if na != a {
                prop_assert_ne!(impostor, na);
            }
        }
    }

    #[test]
    fn durations() {
        let now = Utc::now();
        let in_2h = now + Duration::hours(2);
        assert_eq!(session_duration(None, now, in_2h, 3600, 43200).unwrap(), 3600);
        assert_eq!(session_duration(None, now, now + Duration::minutes(30), 3600, 43200).unwrap(), 1800);
        assert_eq!(session_duration(Some(1200), now, in_2h, 3600, 43200).unwrap(), 1200);
        // Never below STS's minimum, even when the grant ends sooner.
        assert_eq!(session_duration(None, now, now + Duration::minutes(5), 3600, 43200).unwrap(), 900);
        // The configured cap (role chaining) applies.
        assert_eq!(session_duration(None, now, now + Duration::hours(10), 43200, 3600).unwrap(), 3600);
        assert_eq!(session_duration(Some(60), now, in_2h, 3600, 3600).unwrap_err().code, ErrorCode::DurationInvalid);
    }
}
