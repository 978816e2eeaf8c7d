//! Account fixtures for posture tests and the posture benchmark, created through the real APIs.

use aws_config::SdkConfig;
use futures::StreamExt;

/// A healthy account: a logging multi-region trail, an enabled GuardDuty detector, a rotating KMS
/// key, and one IAM user with an active access key.
pub async fn healthy_account(sdk: &SdkConfig) -> HealthyAccount {
    let trail = logging_trail(sdk, "portcullis-test-trail").await;
    let detector = enable_guardduty(sdk).await;
    rotate_existing_keys(sdk).await;
    let kms = aws_sdk_kms::Client::new(sdk);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    kms.enable_key_rotation().key_id(&key).send().await.unwrap();
    let iam = aws_sdk_iam::Client::new(sdk);
    iam.create_user().user_name("alice").send().await.unwrap();
    iam.create_access_key().user_name("alice").send().await.unwrap();
    HealthyAccount { trail, detector, key }
}

/// Turn rotation on for every key already there. moto creates the DynamoDB table's encryption key
/// as a *customer* managed key (on AWS it is the AWS managed `aws/dynamodb`), which would otherwise
/// fail KMS.4 in every test account.
pub async fn rotate_existing_keys(sdk: &SdkConfig) {
    let kms = aws_sdk_kms::Client::new(sdk);
    for key in kms.list_keys().send().await.unwrap().keys.unwrap_or_default() {
        let id = key.key_id.unwrap();
        kms.enable_key_rotation().key_id(&id).send().await.unwrap();
    }
}

/// What [`healthy_account`] created.
#[derive(Debug, Clone)]
pub struct HealthyAccount {
    pub trail: String,
    pub detector: String,
    pub key: String,
}

/// A multi-region trail that is logging, into a new bucket.
pub async fn logging_trail(sdk: &SdkConfig, name: &str) -> String {
    let bucket = format!("{name}-logs");
    aws_sdk_s3_like_bucket(sdk, &bucket).await;
    let ct = aws_sdk_cloudtrail::Client::new(sdk);
    let arn = ct
        .create_trail()
        .name(name)
        .s3_bucket_name(&bucket)
        .is_multi_region_trail(true)
        .send()
        .await
        .unwrap()
        .trail_arn
        .unwrap();
    ct.start_logging().name(name).send().await.unwrap();
    arn
}

/// CloudTrail needs a bucket and moto checks that it exists. The workspace has no S3 SDK, and
/// moto's S3 accepts an unsigned `PUT /<bucket>`.
async fn aws_sdk_s3_like_bucket(sdk: &SdkConfig, bucket: &str) {
    let endpoint = sdk.endpoint_url().expect("tests run against an emulator endpoint");
    let resp = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.unwrap();
    assert!(resp.status().is_success(), "could not create bucket {bucket}: {}", resp.status());
}

/// An enabled GuardDuty detector.
pub async fn enable_guardduty(sdk: &SdkConfig) -> String {
    aws_sdk_guardduty::Client::new(sdk).create_detector().enable(true).send().await.unwrap().detector_id.unwrap()
}

/// The posture benchmark's account: `users` users with two active keys each, `keys` customer KMS
/// keys of which every 10th does not rotate, one logging multi-region trail and one detector.
pub async fn benchmark_account(sdk: &SdkConfig, users: usize, keys: usize) {
    rotate_existing_keys(sdk).await;
    logging_trail(sdk, "bench-trail").await;
    enable_guardduty(sdk).await;
    let iam = aws_sdk_iam::Client::new(sdk);
    futures::stream::iter(0..users)
        .for_each_concurrent(8, |i| {
            let iam = iam.clone();
            async move {
                let user = format!("user-{i:03}");
                iam.create_user().user_name(&user).send().await.unwrap();
                iam.create_access_key().user_name(&user).send().await.unwrap();
                iam.create_access_key().user_name(&user).send().await.unwrap();
            }
        })
        .await;
    let kms = aws_sdk_kms::Client::new(sdk);
    futures::stream::iter(0..keys)
        .for_each_concurrent(8, |i| {
            let kms = kms.clone();
            async move {
                let id = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
                if i % 10 != 9 {
                    kms.enable_key_rotation().key_id(&id).send().await.unwrap();
                }
            }
        })
        .await;
}
