//! The credentials cache behind `portcullis credentials`: issued credentials are kept (0600) per
//! person and account, with the grants they were composed from, and served again while
//!
//! - they expire later than the refresh margin from now (default five minutes), and
//! - every grant the CLI knows to be live in that account is among those grants (a grant requested
//!   since, with `portcullis request`, needs new credentials; one that expired since does not: its
//!   statements already stopped working at its expiry).
//!
//! So a `credential_process` profile costs one round trip per session, not one per AWS command.
//! The CLI learns live grants from its own `request` and `grants` commands and from each
//! credentials reply; `--refresh` asks again regardless.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use portcullis_domain::AccountId;
use portcullis_domain::messages::ProcessCredentials;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::files;

/// One account's cached credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedCredentials {
    pub credentials: ProcessCredentials,
    /// The grants the session policy was composed from.
    pub grant_ids: Vec<String>,
    pub issued_at: DateTime<Utc>,
}

/// Grants the CLI knows of, per account: id → expiry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KnownGrants {
    pub accounts: BTreeMap<String, BTreeMap<String, DateTime<Utc>>>,
}

impl KnownGrants {
    /// The known grants of `account` still live at `now`.
    pub fn live(&self, account: &AccountId, now: DateTime<Utc>) -> Vec<String> {
        self.accounts
            .get(account.as_str())
            .map(|g| g.iter().filter(|(_, exp)| **exp > now).map(|(id, _)| id.clone()).collect())
            .unwrap_or_default()
    }

    /// Remember a grant.
    pub fn add(&mut self, account: &AccountId, id: &str, expires_at: DateTime<Utc>) {
        self.accounts.entry(account.to_string()).or_default().insert(id.to_owned(), expires_at);
    }

    /// Replace what is known of `account` (after a `grant.list`).
    pub fn replace(&mut self, account: &AccountId, grants: impl IntoIterator<Item = (String, DateTime<Utc>)>) {
        self.accounts.insert(account.to_string(), grants.into_iter().collect());
    }
}

/// Whether `cached` may be served at `now`: see the module documentation.
pub fn still_good(cached: &CachedCredentials, live_known: &[String], now: DateTime<Utc>, margin_seconds: i64) -> bool {
    (cached.credentials.expiration - now).num_seconds() > margin_seconds
        && live_known.iter().all(|g| cached.grant_ids.contains(g))
}

/// `<cache>/credentials/<hash of issuer, subject, account>.json`.
pub fn path_for(cache: &Path, issuer: &str, subject: &str, account: &AccountId) -> PathBuf {
    let mut h = Sha256::new();
    for part in [issuer, subject, account.as_str()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    cache.join("credentials").join(format!("{}-{}.json", account, &hex::encode(h.finalize())[..16]))
}

/// `<cache>/grants-<hash of issuer, subject>.json`.
pub fn known_grants_path(cache: &Path, issuer: &str, subject: &str) -> PathBuf {
    let mut h = Sha256::new();
    h.update(issuer.as_bytes());
    h.update([0]);
    h.update(subject.as_bytes());
    cache.join(format!("grants-{}.json", &hex::encode(h.finalize())[..16]))
}

pub fn load_known(path: &Path) -> KnownGrants {
    files::read_json(path).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn cached(expires_in: i64, grants: &[&str], now: DateTime<Utc>) -> CachedCredentials {
        CachedCredentials {
            credentials: ProcessCredentials {
                version: 1,
                access_key_id: "ASIA".into(),
                secret_access_key: "s".into(),
                session_token: "t".into(),
                expiration: now + chrono::TimeDelta::seconds(expires_in),
            },
            grant_ids: grants.iter().map(|g| g.to_string()).collect(),
            issued_at: now,
        }
    }

    #[test]
    fn cached_credentials_serve_until_the_margin_or_a_new_grant() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let c = cached(3600, &["g1", "g2"], now);
        assert!(still_good(&c, &["g1".into()], now, 300), "an expired grant does not matter");
        assert!(still_good(&c, &[], now, 300));
        assert!(!still_good(&c, &["g3".into()], now, 300), "a new grant needs new credentials");
        assert!(!still_good(&cached(299, &["g1"], now), &[], now, 300), "within the margin");
        assert!(still_good(&cached(301, &["g1"], now), &[], now, 300));
    }

    #[test]
    fn known_grants_expire_and_are_replaced() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let account = AccountId::parse("123456789012").unwrap();
        let mut k = KnownGrants::default();
        k.add(&account, "g1", now + chrono::TimeDelta::seconds(10));
        k.add(&account, "g0", now - chrono::TimeDelta::seconds(10));
        assert_eq!(k.live(&account, now), vec!["g1".to_string()]);
        k.replace(&account, [("g2".to_string(), now + chrono::TimeDelta::seconds(5))]);
        assert_eq!(k.live(&account, now), vec!["g2".to_string()]);
        let a = path_for(Path::new("/c"), "https://i", "alice", &account);
        let b = path_for(Path::new("/c"), "https://i", "bob", &account);
        assert_ne!(a, b);
    }
}
