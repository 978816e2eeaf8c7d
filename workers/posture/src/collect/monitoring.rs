//! CloudWatch Logs, CloudWatch and SNS: the CIS 4.x chain after the trail (metric filters of the
//! trails' log groups, alarms, and the subscriptions of the topics alarms notify), each read in
//! the region its resource lives in; and Security Hub (CIS 4.16). Whether a filter covers the
//! benchmark is the domain's call.

use std::collections::BTreeSet;

use portcullis_domain::posture::Unreadable;
use portcullis_domain::posture::controls::{
    AlarmFacts, MetricFilterFacts, MonitoringFacts, TopicFacts, arn_region, log_group_name,
};

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{AwsReader, classify};
use crate::ports::CollectError;

impl AwsReader {
    /// The metric filters of `log_group_arns`, the alarms of their regions, and the confirmed
    /// subscriptions of every SNS topic those alarms notify. A topic whose subscriptions cannot be
    /// read is listed as unreadable; a failed filter or alarm read fails the whole reading.
    pub(super) async fn read_monitoring(
        &self,
        log_group_arns: &BTreeSet<String>,
    ) -> Result<MonitoringFacts, CollectError> {
        let mut facts = MonitoringFacts::default();
        let mut regions = BTreeSet::new();
        for arn in log_group_arns {
            let (Some(name), region) = (log_group_name(arn), arn_region(arn).unwrap_or(&self.region)) else {
                continue;
            };
            regions.insert(region.to_owned());
            let logs = self.clients_in(region).logs;
            let mut token: Option<String> = None;
            loop {
                let page = {
                    let _p = self.permit().await;
                    logs.describe_metric_filters()
                        .log_group_name(&name)
                        .set_next_token(token.take())
                        .send()
                        .await
                        .map_err(|e| classify("logs:DescribeMetricFilters", &e))?
                };
                facts.filters.extend(page.metric_filters().iter().map(|f| {
                    MetricFilterFacts {
                        log_group: f.log_group_name().unwrap_or(&name).to_owned(),
                        name: f.filter_name().unwrap_or_default().to_owned(),
                        pattern: f.filter_pattern().unwrap_or_default().to_owned(),
                        metrics: f
                            .metric_transformations()
                            .iter()
                            .map(|m| (m.metric_namespace().to_owned(), m.metric_name().to_owned()))
                            .collect(),
                    }
                }));
                match page.next_token().filter(|t| !t.is_empty()) {
                    Some(t) => token = Some(t.to_owned()),
                    None => break,
                }
            }
        }
        for region in &regions {
            let cloudwatch = self.clients_in(region).cloudwatch;
            let mut token: Option<String> = None;
            loop {
                let page = {
                    let _p = self.permit().await;
                    cloudwatch
                        .describe_alarms()
                        .max_records(100)
                        .set_next_token(token.take())
                        .send()
                        .await
                        .map_err(|e| classify("cloudwatch:DescribeAlarms", &e))?
                };
                facts.alarms.extend(page.metric_alarms().iter().map(|a| AlarmFacts {
                    name: a.alarm_name().unwrap_or_default().to_owned(),
                    namespace: a.namespace().unwrap_or_default().to_owned(),
                    metric: a.metric_name().unwrap_or_default().to_owned(),
                    actions: a.alarm_actions().to_vec(),
                    actions_enabled: a.actions_enabled().unwrap_or(true),
                }));
                match page.next_token().filter(|t| !t.is_empty()) {
                    Some(t) => token = Some(t.to_owned()),
                    None => break,
                }
            }
        }
        let topics: BTreeSet<String> = facts
            .alarms
            .iter()
            .flat_map(|a| a.actions.iter())
            .filter(|action| action.starts_with("arn:") && action.split(':').nth(2) == Some("sns"))
            .cloned()
            .collect();
        for topic in topics {
            match self.confirmed_subscriptions(&topic).await {
                Ok(n) => facts.topics.push(TopicFacts { arn: topic, confirmed_subscriptions: n }),
                Err(e) => facts.unreadable.push(Unreadable {
                    resource: topic,
                    error_code: e.code,
                    reason: format!("{}: {}", e.op, e.message),
                }),
            }
        }
        Ok(facts)
    }

    /// Subscriptions of `topic` that are confirmed (not `PendingConfirmation`, not `Deleted`).
    async fn confirmed_subscriptions(&self, topic: &str) -> Result<usize, CollectError> {
        let sns = self.clients_in(arn_region(topic).unwrap_or(&self.region)).sns;
        let mut confirmed = 0;
        let mut token: Option<String> = None;
        loop {
            let page = {
                let _p = self.permit().await;
                sns.list_subscriptions_by_topic()
                    .topic_arn(topic)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| classify("sns:ListSubscriptionsByTopic", &e))?
            };
            confirmed += page
                .subscriptions()
                .iter()
                .filter(|s| s.subscription_arn().is_some_and(|a| a.starts_with("arn:")))
                .count();
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(confirmed),
            }
        }
    }

    /// The region's Security Hub ARN, `None` when the account is not subscribed there (Security Hub
    /// answers `InvalidAccessException`; AWS's own denial is `AccessDeniedException`).
    pub(super) async fn read_security_hub(&self) -> Result<Option<String>, CollectError> {
        let _p = self.permit().await;
        match self.clients.securityhub.describe_hub().send().await {
            Ok(out) => Ok(Some(out.hub_arn().unwrap_or_default().to_owned())),
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("InvalidAccessException") => Ok(None),
            Err(e) => Err(classify("securityhub:DescribeHub", &e)),
        }
    }
}
