//! S3 Control: the account's Block Public Access setting (S3.1).

use aws_sdk_s3control::config::endpoint::{Endpoint, EndpointFuture, Params, ResolveEndpoint};
use portcullis_domain::posture::controls::PublicAccessBlockFacts;

use super::{AwsReader, classify};
use crate::ports::CollectError;

/// Resolves every S3 Control call to one configured endpoint, as it is. S3 Control's endpoint rules
/// prefix the host with the account id (`123456789012.s3-control.<region>.amazonaws.com`), which an
/// emulator's `127.0.0.1:<port>` cannot take; used only when `aws.endpoint_url` is set.
#[derive(Debug)]
pub(super) struct FixedEndpoint(pub(super) String);

impl ResolveEndpoint for FixedEndpoint {
    fn resolve_endpoint<'a>(&'a self, _params: &'a Params) -> EndpointFuture<'a> {
        EndpointFuture::ready(Ok(Endpoint::builder().url(self.0.clone()).build()))
    }
}

impl AwsReader {
    /// The account-level Block Public Access setting (`None` when none is set).
    pub(super) async fn read_account_public_access_block(
        &self,
    ) -> Result<Option<PublicAccessBlockFacts>, CollectError> {
        let _p = self.permit().await;
        let out = self.clients.s3control.get_public_access_block().account_id(self.account_id.as_str()).send().await;
        match out {
            Ok(out) => Ok(out.public_access_block_configuration.map(|c| PublicAccessBlockFacts {
                block_public_acls: c.block_public_acls.unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
                block_public_policy: c.block_public_policy.unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_public_access_block_configuration()) => {
                Ok(None)
            }
            Err(e) => Err(classify("s3:GetAccountPublicAccessBlock", &e)),
        }
    }
}
