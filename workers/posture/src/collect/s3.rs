//! S3: the account's Block Public Access setting through S3 Control (S3.1); every bucket's policy,
//! Block Public Access and versioning (S3.5, S3.8, S3.20), and the trails' buckets' access logging
//! (CloudTrail.7), each bucket read in its own region.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_s3control::config::endpoint::{Endpoint, EndpointFuture, Params, ResolveEndpoint};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::StreamExt;
use portcullis_domain::ErrorCode;
use portcullis_domain::posture::Unreadable;
use portcullis_domain::posture::controls::{BucketFacts, BucketReads, PublicAccessBlockFacts, bucket_arn};

use super::{AwsReader, classify};
use crate::ports::{BucketReadsWanted, CollectError};

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

/// A `GetBucketLocation` constraint as a region: none (or empty) is us-east-1, `EU` eu-west-1.
fn location_region(constraint: Option<&str>) -> String {
    match constraint {
        None | Some("") => "us-east-1".to_owned(),
        Some("EU") => "eu-west-1".to_owned(),
        Some(r) => r.to_owned(),
    }
}

/// An unreadable bucket, from a failed read.
fn unreadable(bucket: &str, e: &CollectError) -> Unreadable {
    Unreadable { resource: bucket_arn(bucket), error_code: e.code, reason: format!("{}: {}", e.op, e.message) }
}

/// Add one bucket's read to `reads`.
fn keep<T>(reads: &mut BucketReads<T>, bucket: &str, read: Option<Result<T, CollectError>>) {
    match read {
        None => {}
        Some(Ok(t)) => reads.read.push((bucket.to_owned(), t)),
        Some(Err(e)) => reads.unreadable.push(unreadable(bucket, &e)),
    }
}

impl AwsReader {
    /// The buckets the account owns, with their region when `ListBuckets` says it (`BucketRegion`;
    /// older endpoints and emulators do not, and the bucket's location is read instead).
    async fn list_buckets(&self) -> Result<Vec<(String, Option<String>)>, CollectError> {
        let mut buckets = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = {
                let _p = self.permit().await;
                self.clients
                    .s3
                    .list_buckets()
                    .max_buckets(1000)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| classify("s3:ListAllMyBuckets", &e))?
            };
            for b in page.buckets() {
                if let Some(name) = b.name() {
                    buckets.push((name.to_owned(), b.bucket_region().map(str::to_owned)));
                }
            }
            match page.continuation_token().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(buckets),
            }
        }
    }

    /// The region of `bucket`: the one `ListBuckets` gave, else `GetBucketLocation`'s.
    async fn bucket_region(&self, bucket: &str, listed: Option<String>) -> Result<String, CollectError> {
        if let Some(region) = listed.filter(|r| !r.is_empty()) {
            return Ok(region);
        }
        let _p = self.permit().await;
        let out = self
            .clients
            .s3
            .get_bucket_location()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| classify("s3:GetBucketLocation", &e))?;
        Ok(location_region(out.location_constraint().map(|c| c.as_str())))
    }

    /// The bucket's policy (`None`: it has none).
    async fn bucket_policy(&self, s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Option<String>, CollectError> {
        let _p = self.permit().await;
        match s3.get_bucket_policy().bucket(bucket).send().await {
            Ok(out) => Ok(out.policy),
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchBucketPolicy") => Ok(None),
            Err(e) => Err(classify("s3:GetBucketPolicy", &e)),
        }
    }

    /// The bucket-level Block Public Access (`None`: none is set).
    async fn bucket_public_access_block(
        &self,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
    ) -> Result<Option<PublicAccessBlockFacts>, CollectError> {
        let _p = self.permit().await;
        match s3.get_public_access_block().bucket(bucket).send().await {
            Ok(out) => Ok(out.public_access_block_configuration.map(|c| PublicAccessBlockFacts {
                block_public_acls: c.block_public_acls.unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
                block_public_policy: c.block_public_policy.unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
            })),
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchPublicAccessBlockConfiguration") => {
                Ok(None)
            }
            Err(e) => Err(classify("s3:GetBucketPublicAccessBlock", &e)),
        }
    }

    /// Whether the bucket's versioning has MFA delete enabled.
    async fn bucket_mfa_delete(&self, s3: &aws_sdk_s3::Client, bucket: &str) -> Result<bool, CollectError> {
        let _p = self.permit().await;
        let out = s3
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| classify("s3:GetBucketVersioning", &e))?;
        Ok(out.mfa_delete() == Some(&aws_sdk_s3::types::MfaDeleteStatus::Enabled))
    }

    /// S3.5, S3.8 and S3.20's facts: every bucket of the account, each read (concurrently, within
    /// the scan's bound) in its own region.
    pub(super) async fn read_buckets(&self, wanted: BucketReadsWanted) -> Result<BucketFacts, CollectError> {
        let buckets = self.list_buckets().await?;
        let reads = futures::stream::iter(buckets)
            .map(|(bucket, listed)| async move {
                let region = match self.bucket_region(&bucket, listed).await {
                    Ok(r) => r,
                    Err(e) => return (bucket, Err(e)),
                };
                let s3 = self.clients_in(&region).s3;
                let (policy, block, mfa) = tokio::join!(
                    async { if wanted.policy { Some(self.bucket_policy(&s3, &bucket).await) } else { None } },
                    async {
                        if wanted.public_access_block {
                            Some(self.bucket_public_access_block(&s3, &bucket).await)
                        } else {
                            None
                        }
                    },
                    async { if wanted.versioning { Some(self.bucket_mfa_delete(&s3, &bucket).await) } else { None } },
                );
                (bucket, Ok((policy, block, mfa)))
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        let mut facts = BucketFacts::default();
        for (bucket, read) in reads {
            match read {
                // Without its region, no read of the bucket can be made: each wanted one is unreadable.
                Err(e) => {
                    if wanted.policy {
                        facts.policies.unreadable.push(unreadable(&bucket, &e));
                    }
                    if wanted.public_access_block {
                        facts.public_access_blocks.unreadable.push(unreadable(&bucket, &e));
                    }
                    if wanted.versioning {
                        facts.mfa_delete.unreadable.push(unreadable(&bucket, &e));
                    }
                }
                Ok((policy, block, mfa)) => {
                    keep(&mut facts.policies, &bucket, policy);
                    keep(&mut facts.public_access_blocks, &bucket, block);
                    keep(&mut facts.mfa_delete, &bucket, mfa);
                }
            }
        }
        Ok(facts)
    }

    /// CloudTrail.7's facts: whether each of `buckets` (the trails' buckets) has server access
    /// logging. A bucket the account does not own is unreadable from here (another account's log
    /// archive), as is one whose location or logging cannot be read.
    pub(super) async fn read_trail_bucket_logging(
        &self,
        buckets: &BTreeSet<String>,
    ) -> Result<BucketReads<bool>, CollectError> {
        let mut reads = BucketReads::default();
        if buckets.is_empty() {
            return Ok(reads);
        }
        let owned: HashMap<String, Option<String>> = self.list_buckets().await?.into_iter().collect();
        let mine: Vec<(String, Option<String>)> = buckets
            .iter()
            .filter_map(|b| match owned.get(b) {
                Some(listed) => Some((b.clone(), listed.clone())),
                None => {
                    reads.unreadable.push(Unreadable {
                        resource: bucket_arn(b),
                        error_code: ErrorCode::AccessDenied,
                        reason: "the bucket is not this account's (ListBuckets does not list it): judge its \
                            logging in the account that owns it"
                            .into(),
                    });
                    None
                }
            })
            .collect();
        let logging = futures::stream::iter(mine)
            .map(|(bucket, listed)| async move {
                let region = self.bucket_region(&bucket, listed).await;
                let read = match region {
                    Err(e) => Err(e),
                    Ok(region) => {
                        let _p = self.permit().await;
                        self.clients_in(&region)
                            .s3
                            .get_bucket_logging()
                            .bucket(&bucket)
                            .send()
                            .await
                            .map(|out| out.logging_enabled().is_some_and(|l| !l.target_bucket().is_empty()))
                            .map_err(|e| classify("s3:GetBucketLogging", &e))
                    }
                };
                (bucket, read)
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        for (bucket, read) in logging {
            keep(&mut reads, &bucket, Some(read));
        }
        reads.read.sort();
        Ok(reads)
    }
}
