//! Account.1: the account's security contact.

use super::{ControlId, ControlResult};

/// Account.1: the account has a `SECURITY` alternate contact (`account:GetAlternateContact`), so
/// AWS can reach the people who handle its security notices.
pub fn evaluate_security_contact(account: &str, has_security_contact: bool) -> ControlResult {
    if has_security_contact {
        return ControlResult::pass(ControlId::Account1);
    }
    ControlResult::fail(
        ControlId::Account1,
        vec![format!("security-contact:{account}")],
        "the account has no security alternate contact",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::controls::Status;

    #[test]
    fn a_security_contact_passes_and_none_fails() {
        assert_eq!(evaluate_security_contact("123456789012", true).status, Status::Pass);
        let none = evaluate_security_contact("123456789012", false);
        assert_eq!(none.status, Status::Fail);
        assert_eq!(none.failing_resources, vec!["security-contact:123456789012"]);
    }
}
