//! AWS SDK configuration, and an interceptor that counts API calls.
//!
//! Endpoints come only from configuration (`aws.endpoint_url`) or the SDK's own `AWS_ENDPOINT_URL`,
//! so the same binary runs against moto, LocalStack and real AWS.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::config::AwsSettings;

/// Region used when neither the configuration nor the environment names one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Load the SDK configuration: default credential chain, the configured (or default) region, and
/// the configured endpoint override if any.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let region = match &settings.region {
        Some(r) => RegionProviderChain::first_try(Region::new(r.clone())),
        None => RegionProviderChain::default_provider().or_else(Region::new(FALLBACK_REGION)),
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// Counts every HTTP attempt made by the clients it is attached to, per `Service.Operation`.
#[derive(Debug, Clone, Default)]
pub struct ApiCallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl ApiCallCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls per `Service.Operation`.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// All calls.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    pub fn reset(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.clear();
        }
    }
}

impl Intercept for ApiCallCounter {
    fn name(&self) -> &'static str {
        "ApiCallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key =
            cfg.load::<Metadata>().map(|m| format!("{}.{}", m.service(), m.name())).unwrap_or_else(|| "unknown".into());
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(key).or_default() += 1;
        }
        Ok(())
    }
}
