//! Who is asking: the requester as a verified ID token describes them.

/// A verified requester. Only an identity adapter (which checked a token's signature and claims)
/// builds one; nothing in a message body can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    /// The configured user claim (default `sub`).
    pub user: String,
    pub team: Option<String>,
    pub groups: Vec<String>,
}

impl Identity {
    /// Whether the identity is in any of `groups`.
    pub fn in_any_group(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }
}
