//! Who is asking: the requester as a verified ID token describes them.

use chrono::{DateTime, Utc};

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
}

impl Identity {
    /// Whether the identity is in any of `groups`.
    pub fn in_any_group(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }
}
