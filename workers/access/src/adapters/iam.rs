//! [`SessionRevoker`] over IAM: the `PortcullisRevocations` inline policy on each account's broker
//! role. The worker needs exactly `iam:GetRolePolicy` and `iam:PutRolePolicy` on that role (in
//! another account, through that account's configured revoker role).

use std::collections::BTreeMap;

use async_trait::async_trait;
use portcullis_domain::AccountId;
use portcullis_domain::revocation::POLICY_NAME;
use portcullis_runtime::aws::{FailureKind, classify};

use crate::ports::{RevokerError, SessionRevoker};

/// The IAM client and broker role name of each account.
#[derive(Debug, Clone, Default)]
pub struct IamSessionRevoker {
    accounts: BTreeMap<AccountId, (aws_sdk_iam::Client, String)>,
}

impl IamSessionRevoker {
    /// Revoke sessions of `role_name` in `account` through `client`.
    pub fn with_account(mut self, account: AccountId, client: aws_sdk_iam::Client, role_name: &str) -> Self {
        self.accounts.insert(account, (client, role_name.to_owned()));
        self
    }

    fn account(&self, account: &AccountId) -> Result<&(aws_sdk_iam::Client, String), RevokerError> {
        self.accounts.get(account).ok_or_else(|| {
            RevokerError::new(
                FailureKind::NotFound,
                format!("account {account} has no broker role to revoke sessions on"),
            )
        })
    }
}

/// The broker role's name from its ARN (`arn:aws:iam::1:role/path/name` → `name`).
pub fn role_name(role_arn: &str) -> Option<&str> {
    role_arn.split_once(":role/").map(|(_, rest)| rest.rsplit('/').next().unwrap_or(rest)).filter(|n| !n.is_empty())
}

#[async_trait]
impl SessionRevoker for IamSessionRevoker {
    async fn get_policy(&self, account: &AccountId) -> Result<Option<String>, RevokerError> {
        let (iam, role) = self.account(account)?;
        match iam.get_role_policy().role_name(role).policy_name(POLICY_NAME).send().await {
            Ok(out) => Ok(Some(decode_policy(&out.policy_document))),
            Err(e) => {
                let failure = classify(&e);
                if failure.kind == FailureKind::NotFound {
                    Ok(None)
                } else {
                    Err(failure.context(format_args!("iam:GetRolePolicy on {role} in {account}")))
                }
            }
        }
    }

    async fn put_policy(&self, account: &AccountId, document: &str) -> Result<(), RevokerError> {
        let (iam, role) = self.account(account)?;
        iam.put_role_policy()
            .role_name(role)
            .policy_name(POLICY_NAME)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| classify(&e).context(format_args!("iam:PutRolePolicy on {role} in {account}")))?;
        Ok(())
    }
}

/// IAM returns policy documents URL-encoded (RFC 3986); emulators may not.
pub fn decode_policy(document: &str) -> String {
    if document.starts_with('{') {
        return document.to_owned();
    }
    let bytes = document.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%').then(|| document.get(i + 1..i + 3)).flatten();
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_and_encoded_documents() {
        assert_eq!(role_name("arn:aws:iam::123456789012:role/p-broker"), Some("p-broker"));
        assert_eq!(role_name("arn:aws:iam::123456789012:role/path/to/p-broker"), Some("p-broker"));
        assert_eq!(role_name("arn:aws:iam::123456789012:user/x"), None);
        assert_eq!(decode_policy("%7B%22a%22%3A1%7D"), r#"{"a":1}"#);
        assert_eq!(decode_policy(r#"{"a":1}"#), r#"{"a":1}"#);
    }
}
