//! CloudTrail: trails, their configuration, status and event selectors (CloudTrail.1, .2, .4), each
//! read in the trail's home region.

use futures::StreamExt;
use portcullis_domain::ErrorCode;
use portcullis_domain::posture::controls::{FieldCondition, TrailSelector};
use portcullis_domain::posture::{TrailFacts, Unreadable};

use super::{AwsReader, classify};
use crate::ports::CollectError;

impl AwsReader {
    /// Every trail visible in the region (shadow copies of multi-region trails included, read
    /// through their home region), with status and event selectors; trails whose status or
    /// selectors could not be read are also listed as unreadable, so one unreadable trail (another
    /// account's organization trail) does not hide the rest.
    pub(super) async fn read_trails(&self) -> Result<(Vec<TrailFacts>, Vec<Unreadable>), CollectError> {
        let list = {
            let _p = self.permit().await;
            self.clients
                .cloudtrail
                .describe_trails()
                .include_shadow_trails(true)
                .send()
                .await
                .map_err(|e| classify("cloudtrail:DescribeTrails", &e))?
        };
        let trails = list.trail_list.unwrap_or_default();
        let facts = futures::stream::iter(trails)
            .map(|t| async move {
                let arn = t.trail_arn.clone().or(t.name.clone()).unwrap_or_default();
                let home_region = t.home_region.clone().unwrap_or_default();
                let shadow = !home_region.is_empty() && home_region != self.region;
                let cloudtrail = self.cloudtrail_in(&home_region);
                let (status, selectors, settings) = tokio::join!(
                    async {
                        let _p = self.permit().await;
                        cloudtrail.get_trail_status().name(&arn).send().await
                    },
                    async {
                        let _p = self.permit().await;
                        cloudtrail.get_event_selectors().trail_name(&arn).send().await
                    },
                    async {
                        // A shadow copy's configuration is read where the trail lives, as its status is.
                        shadow.then_some(())?;
                        let _p = self.permit().await;
                        Some(cloudtrail.get_trail().name(&arn).send().await)
                    }
                );
                let mut facts = TrailFacts {
                    arn: arn.clone(),
                    home_region,
                    is_multi_region: t.is_multi_region_trail.unwrap_or(false),
                    log_file_validation: t.log_file_validation_enabled.unwrap_or(false),
                    kms_key_id: t.kms_key_id.clone().filter(|k| !k.is_empty()),
                    cloudwatch_logs_group_arn: t.cloud_watch_logs_log_group_arn.clone().filter(|a| !a.is_empty()),
                    s3_bucket_name: t.s3_bucket_name.clone().filter(|b| !b.is_empty()),
                    ..TrailFacts::default()
                };
                match settings {
                    None => {}
                    Some(Ok(out)) => match out.trail {
                        Some(home) => {
                            facts.is_multi_region = home.is_multi_region_trail.unwrap_or(false);
                            facts.log_file_validation = home.log_file_validation_enabled.unwrap_or(false);
                            facts.kms_key_id = home.kms_key_id.filter(|k| !k.is_empty());
                            facts.cloudwatch_logs_group_arn =
                                home.cloud_watch_logs_log_group_arn.filter(|a| !a.is_empty());
                            facts.s3_bucket_name =
                                home.s3_bucket_name.filter(|b| !b.is_empty()).or(facts.s3_bucket_name);
                        }
                        None => {
                            facts.settings_unreadable = Some(Unreadable {
                                resource: arn.clone(),
                                error_code: ErrorCode::ReadFailed,
                                reason: "cloudtrail:GetTrail: the home region returned no trail".into(),
                            })
                        }
                    },
                    Some(Err(e)) => {
                        let e = classify("cloudtrail:GetTrail", &e);
                        facts.settings_unreadable = Some(Unreadable {
                            resource: arn.clone(),
                            error_code: e.code,
                            reason: format!("{}: {}", e.op, e.message),
                        });
                    }
                }
                let unreadable = |e: CollectError| Unreadable {
                    resource: arn.clone(),
                    error_code: e.code,
                    reason: format!("{}: {}", e.op, e.message),
                };
                let read = status.map_err(|e| unreadable(classify("cloudtrail:GetTrailStatus", &e))).and_then(|st| {
                    Ok((st, selectors.map_err(|e| unreadable(classify("cloudtrail:GetEventSelectors", &e)))?))
                });
                match read {
                    Ok((status, selectors)) => {
                        facts.is_logging = status.is_logging.unwrap_or(false);
                        facts.latest_delivery_error = status.latest_delivery_error.filter(|e| !e.is_empty());
                        facts.selectors = trail_selectors(&selectors);
                        (facts, None)
                    }
                    // Its configuration still counts (CloudTrail.2, CloudTrail.4) when it was
                    // read; CloudTrail.1 knows it only as unreadable.
                    Err(u) => (facts, Some(u)),
                }
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        let (mut readable, mut unreadable) = (Vec::new(), Vec::new());
        for (trail, why) in facts {
            readable.push(trail);
            unreadable.extend(why);
        }
        readable.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok((readable, unreadable))
    }
}

/// A trail's event selectors as the domain sees them (which events they record is decided there).
fn trail_selectors(
    out: &aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput,
) -> Vec<TrailSelector> {
    use aws_sdk_cloudtrail::types::ReadWriteType;
    let basic = out.event_selectors().iter().map(|s| {
        let (read, write) = match s.read_write_type() {
            Some(ReadWriteType::ReadOnly) => (true, false),
            Some(ReadWriteType::WriteOnly) => (false, true),
            // `All`, and the default when absent.
            _ => (true, true),
        };
        TrailSelector::Basic {
            read,
            write,
            // CloudTrail's default for a selector is to include management events.
            include_management: s.include_management_events().unwrap_or(true),
            excluded_sources: s.exclude_management_event_sources().to_vec(),
            data_resources: s
                .data_resources()
                .iter()
                .map(|d| (d.r#type().unwrap_or_default().to_owned(), d.values().to_vec()))
                .collect(),
        }
    });
    let advanced = out.advanced_event_selectors().iter().map(|s| TrailSelector::Advanced {
        name: s.name().unwrap_or_default().to_owned(),
        fields: s
            .field_selectors()
            .iter()
            .map(|f| FieldCondition {
                field: f.field().to_owned(),
                equals: f.equals().to_vec(),
                not_equals: f.not_equals().to_vec(),
                starts_with: f.starts_with().to_vec(),
                not_starts_with: f.not_starts_with().to_vec(),
                ends_with: f.ends_with().to_vec(),
                not_ends_with: f.not_ends_with().to_vec(),
            })
            .collect(),
    });
    basic.chain(advanced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_reach_the_domain_as_cloudtrail_returns_them() {
        use aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput;
        use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector, EventSelector, ReadWriteType};
        assert!(trail_selectors(&GetEventSelectorsOutput::builder().build()).is_empty());
        let out = GetEventSelectorsOutput::builder()
            .event_selectors(
                EventSelector::builder()
                    .read_write_type(ReadWriteType::WriteOnly)
                    .include_management_events(true)
                    .exclude_management_event_sources("kms.amazonaws.com")
                    .build(),
            )
            .event_selectors(EventSelector::builder().build())
            .advanced_event_selectors(
                AdvancedEventSelector::builder()
                    .name("no-kms")
                    .field_selectors(
                        AdvancedFieldSelector::builder().field("eventCategory").equals("Management").build().unwrap(),
                    )
                    .field_selectors(
                        AdvancedFieldSelector::builder()
                            .field("eventSource")
                            .not_equals("kms.amazonaws.com")
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build();
        let selectors = trail_selectors(&out);
        assert_eq!(
            selectors[0],
            TrailSelector::Basic {
                read: false,
                write: true,
                include_management: true,
                excluded_sources: vec!["kms.amazonaws.com".into()],
                data_resources: vec![]
            }
        );
        assert_eq!(
            selectors[1],
            TrailSelector::Basic {
                read: true,
                write: true,
                include_management: true,
                excluded_sources: vec![],
                data_resources: vec![]
            }
        );
        let TrailSelector::Advanced { name, fields } = &selectors[2] else { panic!("{selectors:?}") };
        assert_eq!(name, "no-kms");
        assert_eq!(fields[1].field, "eventSource");
        assert_eq!(fields[1].not_equals, vec!["kms.amazonaws.com"]);
    }
}
