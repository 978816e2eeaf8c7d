//! The Account Management API: the account's security contact (Account.1).

use aws_sdk_account::types::AlternateContactType;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{AwsReader, classify};
use crate::ports::CollectError;

impl AwsReader {
    /// Whether the account (the caller's own) has a `SECURITY` alternate contact: AWS answers
    /// `ResourceNotFoundException` when none is set.
    pub(super) async fn read_security_contact(&self) -> Result<bool, CollectError> {
        let _p = self.permit().await;
        let read = self
            .clients
            .account
            .get_alternate_contact()
            .alternate_contact_type(AlternateContactType::Security)
            .send()
            .await;
        match read {
            Ok(out) => Ok(out.alternate_contact().is_some()),
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ResourceNotFoundException") => Ok(false),
            Err(e) => Err(classify("account:GetAlternateContact", &e)),
        }
    }
}
