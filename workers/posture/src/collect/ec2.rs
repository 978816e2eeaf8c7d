//! EC2: security groups (EC2.2, EC2.53, EC2.54), VPCs and flow logs (EC2.6), EBS default encryption
//! (EC2.7), instances' metadata options (EC2.8) and network ACLs (EC2.21).

use portcullis_domain::posture::controls::{
    FlowLogFacts, InstanceFacts, NaclEntryFacts, NaclFacts, PermissionFacts, SecurityGroupFacts, VpcFacts,
};

use super::{AwsReader, classify};
use crate::ports::CollectError;

fn permission(p: &aws_sdk_ec2::types::IpPermission) -> PermissionFacts {
    PermissionFacts {
        protocol: p.ip_protocol().unwrap_or_default().to_owned(),
        from_port: p.from_port(),
        to_port: p.to_port(),
        ipv4_ranges: p.ip_ranges().iter().filter_map(|r| r.cidr_ip().map(str::to_owned)).collect(),
        ipv6_ranges: p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6().map(str::to_owned)).collect(),
        prefix_lists: p.prefix_list_ids().iter().filter_map(|r| r.prefix_list_id().map(str::to_owned)).collect(),
        groups: p.user_id_group_pairs().iter().filter_map(|r| r.group_id().map(str::to_owned)).collect(),
    }
}

impl AwsReader {
    fn arn(&self, kind: &str, id: &str) -> String {
        format!("arn:aws:ec2:{}:{}:{kind}/{id}", self.region, self.account_id)
    }

    /// Whether EBS encryption by default is on.
    pub(super) async fn read_ebs_encryption_by_default(&self) -> Result<bool, CollectError> {
        let _p = self.permit().await;
        let out = self
            .clients
            .ec2
            .get_ebs_encryption_by_default()
            .send()
            .await
            .map_err(|e| classify("ec2:GetEbsEncryptionByDefault", &e))?;
        Ok(out.ebs_encryption_by_default.unwrap_or(false))
    }

    /// Every instance's metadata options (pages of up to 1,000).
    pub(super) async fn read_instances(&self) -> Result<Vec<InstanceFacts>, CollectError> {
        let mut instances = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = {
                let _p = self.permit().await;
                self.clients
                    .ec2
                    .describe_instances()
                    .max_results(1000)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| classify("ec2:DescribeInstances", &e))?
            };
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                let id = i.instance_id().unwrap_or_default().to_owned();
                let options = i.metadata_options();
                instances.push(InstanceFacts {
                    arn: self.arn("instance", &id),
                    state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()).unwrap_or_default(),
                    http_tokens: options.and_then(|o| o.http_tokens()).map(|t| t.as_str().to_owned()),
                    http_endpoint: options.and_then(|o| o.http_endpoint()).map(|e| e.as_str().to_owned()),
                    instance_id: id,
                });
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(instances),
            }
        }
    }

    /// Every network ACL with its entries (pages of up to 1,000).
    pub(super) async fn read_network_acls(&self) -> Result<Vec<NaclFacts>, CollectError> {
        use aws_sdk_ec2::types::RuleAction;
        let mut acls = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = {
                let _p = self.permit().await;
                self.clients
                    .ec2
                    .describe_network_acls()
                    .max_results(1000)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| classify("ec2:DescribeNetworkAcls", &e))?
            };
            for acl in page.network_acls() {
                let id = acl.network_acl_id().unwrap_or_default().to_owned();
                let entries = acl
                    .entries()
                    .iter()
                    .map(|e| NaclEntryFacts {
                        rule_number: e.rule_number().unwrap_or(i32::MAX),
                        egress: e.egress().unwrap_or(false),
                        protocol: e.protocol().unwrap_or("-1").to_owned(),
                        allow: e.rule_action() == Some(&RuleAction::Allow),
                        ipv4_cidr: e.cidr_block().map(str::to_owned),
                        ipv6_cidr: e.ipv6_cidr_block().map(str::to_owned),
                        from_port: e.port_range().and_then(|p| p.from()),
                        to_port: e.port_range().and_then(|p| p.to()),
                    })
                    .collect();
                acls.push(NaclFacts { arn: self.arn("network-acl", &id), nacl_id: id, entries });
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(acls),
            }
        }
    }

    /// Every security group (pages of up to 1,000), rules evaluated by the domain.
    pub(super) async fn read_security_groups(&self) -> Result<Vec<SecurityGroupFacts>, CollectError> {
        let mut groups = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = {
                let _p = self.permit().await;
                self.clients
                    .ec2
                    .describe_security_groups()
                    .max_results(1000)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| classify("ec2:DescribeSecurityGroups", &e))?
            };
            for g in page.security_groups() {
                let id = g.group_id().unwrap_or_default().to_owned();
                groups.push(SecurityGroupFacts {
                    arn: self.arn("security-group", &id),
                    group_name: g.group_name().unwrap_or_default().to_owned(),
                    vpc_id: g.vpc_id().map(str::to_owned),
                    ingress: g.ip_permissions().iter().map(permission).collect(),
                    egress: g.ip_permissions_egress().iter().map(permission).collect(),
                    group_id: id,
                });
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(groups),
            }
        }
    }

    /// Every VPC, and every flow log (the domain matches them; subnet and interface flow logs do not
    /// count for a VPC).
    pub(super) async fn read_vpcs_and_flow_logs(&self) -> Result<(Vec<VpcFacts>, Vec<FlowLogFacts>), CollectError> {
        let ec2 = &self.clients.ec2;
        let (vpcs, flow_logs) = tokio::join!(
            async {
                let mut vpcs = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let page = {
                        let _p = self.permit().await;
                        ec2.describe_vpcs()
                            .max_results(1000)
                            .set_next_token(token.take())
                            .send()
                            .await
                            .map_err(|e| classify("ec2:DescribeVpcs", &e))?
                    };
                    vpcs.extend(
                        page.vpcs()
                            .iter()
                            .filter_map(|v| v.vpc_id())
                            .map(|id| VpcFacts { vpc_id: id.to_owned(), arn: self.arn("vpc", id) }),
                    );
                    match page.next_token.filter(|t| !t.is_empty()) {
                        Some(t) => token = Some(t),
                        None => return Ok::<_, CollectError>(vpcs),
                    }
                }
            },
            async {
                let mut logs = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let page = {
                        let _p = self.permit().await;
                        ec2.describe_flow_logs()
                            .max_results(1000)
                            .set_next_token(token.take())
                            .send()
                            .await
                            .map_err(|e| classify("ec2:DescribeFlowLogs", &e))?
                    };
                    logs.extend(page.flow_logs().iter().map(|f| FlowLogFacts {
                        flow_log_id: f.flow_log_id().unwrap_or_default().to_owned(),
                        resource_id: f.resource_id().unwrap_or_default().to_owned(),
                        status: f.flow_log_status().unwrap_or_default().to_owned(),
                        traffic_type: f.traffic_type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                        deliver_status: f.deliver_logs_status().map(str::to_owned),
                        deliver_error: f.deliver_logs_error_message().map(str::to_owned),
                    }));
                    match page.next_token.filter(|t| !t.is_empty()) {
                        Some(t) => token = Some(t),
                        None => return Ok::<_, CollectError>(logs),
                    }
                }
            }
        );
        Ok((vpcs?, flow_logs?))
    }
}
