//! AWS Config: configuration recorders and their status (Config.1).

use portcullis_domain::posture::controls::ConfigRecorderFacts;

use super::{AwsReader, classify};
use crate::ports::CollectError;

impl AwsReader {
    /// The region's recorders, each with its status (matched by name).
    pub(super) async fn read_config_recorders(&self) -> Result<Vec<ConfigRecorderFacts>, CollectError> {
        let config = &self.clients.config;
        let (recorders, statuses) = tokio::join!(
            async {
                let _p = self.permit().await;
                config.describe_configuration_recorders().send().await
            },
            async {
                let _p = self.permit().await;
                config.describe_configuration_recorder_status().send().await
            }
        );
        let recorders = recorders.map_err(|e| classify("config:DescribeConfigurationRecorders", &e))?;
        let statuses = statuses.map_err(|e| classify("config:DescribeConfigurationRecorderStatus", &e))?;
        Ok(recorders
            .configuration_recorders()
            .iter()
            .map(|r| {
                let name = r.name().unwrap_or_default().to_owned();
                let status = statuses.configuration_recorders_status().iter().find(|s| s.name() == Some(name.as_str()));
                ConfigRecorderFacts {
                    role_arn: r.role_arn().unwrap_or_default().to_owned(),
                    all_supported: r.recording_group().is_some_and(|g| g.all_supported()),
                    include_global_resource_types: r
                        .recording_group()
                        .is_some_and(|g| g.include_global_resource_types()),
                    recording: status.map(|s| s.recording()),
                    last_status: status.and_then(|s| s.last_status()).map(|s| s.as_str().to_owned()),
                    name,
                }
            })
            .collect())
    }
}
