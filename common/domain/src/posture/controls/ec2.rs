//! EC2 controls: security groups (EC2.2, EC2.53, EC2.54), VPC flow logs (EC2.6) and EBS default
//! encryption (EC2.7).

use super::{ControlId, ControlResult};

/// One rule of a security group (one `IpPermission`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PermissionFacts {
    /// `-1` (all), `tcp`, `udp`, `icmp`, or a protocol number.
    pub protocol: String,
    /// `None` (or -1) with the protocol `-1`: every port.
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub ipv4_ranges: Vec<String>,
    pub ipv6_ranges: Vec<String>,
    /// Prefix lists and referenced groups: never "the internet" for EC2.53/EC2.54.
    pub prefix_lists: Vec<String>,
    pub groups: Vec<String>,
}

impl PermissionFacts {
    /// Whether the rule lets `port` in (TCP or UDP, or all protocols).
    fn opens(&self, port: i32) -> bool {
        let p = self.protocol.to_ascii_lowercase();
        match p.as_str() {
            "-1" | "all" => true,
            "tcp" | "udp" | "6" | "17" => match (self.from_port, self.to_port) {
                (Some(from), Some(to)) if from >= 0 && to >= 0 => from <= port && port <= to,
                // No ports, or -1: every port.
                _ => true,
            },
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match (self.protocol.as_str(), self.from_port, self.to_port) {
            ("-1", _, _) => "all traffic".to_owned(),
            (p, Some(f), Some(t)) if f == t => format!("{p} {f}"),
            (p, Some(f), Some(t)) => format!("{p} {f}-{t}"),
            (p, _, _) => format!("{p} all ports"),
        }
    }
}

/// One security group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityGroupFacts {
    pub group_id: String,
    pub group_name: String,
    pub vpc_id: Option<String>,
    /// ARN (for evidence).
    pub arn: String,
    pub ingress: Vec<PermissionFacts>,
    pub egress: Vec<PermissionFacts>,
}

/// Which "anywhere" EC2.53/EC2.54 look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anywhere {
    /// `0.0.0.0/0` (EC2.53).
    Ipv4,
    /// `::/0` (EC2.54).
    Ipv6,
}

/// The remote administration ports (SSH, RDP).
pub const ADMIN_PORTS: [i32; 2] = [22, 3389];

/// EC2.53 (`Anywhere::Ipv4`) or EC2.54 (`Anywhere::Ipv6`): no inbound rule lets the whole internet
/// reach port 22 or 3389.
pub fn evaluate_admin_ports(groups: &[SecurityGroupFacts], anywhere: Anywhere) -> ControlResult {
    let (control, cidr) = match anywhere {
        Anywhere::Ipv4 => (ControlId::Ec253, "0.0.0.0/0"),
        Anywhere::Ipv6 => (ControlId::Ec254, "::/0"),
    };
    let mut failing = Vec::new();
    let mut why = Vec::new();
    for g in groups {
        let open: Vec<String> = g
            .ingress
            .iter()
            .filter(|p| {
                let ranges = match anywhere {
                    Anywhere::Ipv4 => &p.ipv4_ranges,
                    Anywhere::Ipv6 => &p.ipv6_ranges,
                };
                ranges.iter().any(|r| r == cidr) && ADMIN_PORTS.iter().any(|port| p.opens(*port))
            })
            .map(PermissionFacts::describe)
            .collect();
        if !open.is_empty() {
            failing.push(g.arn.clone());
            why.push(format!("{}: {}", g.group_id, open.join(", ")));
        }
    }
    if failing.is_empty() {
        return ControlResult::pass(control);
    }
    failing.sort();
    why.sort();
    let n = failing.len();
    ControlResult::fail(
        control,
        failing,
        format!("{n} security group(s) let {cidr} reach port 22 or 3389 ({})", why.join("; ")),
    )
}

/// EC2.2: every VPC's `default` group has no inbound and no outbound rule.
pub fn evaluate_default_security_groups(groups: &[SecurityGroupFacts]) -> ControlResult {
    let mut failing = Vec::new();
    let mut why = Vec::new();
    for g in groups.iter().filter(|g| g.group_name == "default") {
        let inbound = !g.ingress.is_empty();
        let outbound = !g.egress.is_empty();
        if inbound || outbound {
            failing.push(g.arn.clone());
            let what = match (inbound, outbound) {
                (true, true) => "inbound and outbound rules",
                (true, false) => "inbound rules",
                _ => "outbound rules",
            };
            why.push(format!("{} ({}): {what}", g.group_id, g.vpc_id.as_deref().unwrap_or("no VPC")));
        }
    }
    if failing.is_empty() {
        return ControlResult::pass(ControlId::Ec22);
    }
    failing.sort();
    why.sort();
    let n = failing.len();
    ControlResult::fail(
        ControlId::Ec22,
        failing,
        format!("{n} default security group(s) allow traffic ({})", why.join("; ")),
    )
}

/// One VPC flow log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlowLogFacts {
    pub flow_log_id: String,
    /// The VPC, subnet or network interface it records.
    pub resource_id: String,
    /// `ACTIVE` when it records.
    pub status: String,
    /// `ACCEPT`, `REJECT` or `ALL`.
    pub traffic_type: String,
    /// `SUCCESS` or `FAILED` (with `deliver_error`).
    pub deliver_status: Option<String>,
    pub deliver_error: Option<String>,
}

/// One VPC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VpcFacts {
    pub vpc_id: String,
    pub arn: String,
}

/// EC2.6: every VPC has an active VPC flow log that records rejected traffic and delivers.
pub fn evaluate_flow_logs(vpcs: &[VpcFacts], flow_logs: &[FlowLogFacts]) -> ControlResult {
    let mut failing = Vec::new();
    let mut why = Vec::new();
    for vpc in vpcs {
        let own: Vec<&FlowLogFacts> = flow_logs.iter().filter(|f| f.resource_id == vpc.vpc_id).collect();
        let good = own.iter().any(|f| {
            f.status.eq_ignore_ascii_case("ACTIVE")
                && matches!(f.traffic_type.to_ascii_uppercase().as_str(), "REJECT" | "ALL")
                && !f.deliver_status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("FAILED"))
        });
        if good {
            continue;
        }
        failing.push(vpc.arn.clone());
        let problem = if own.is_empty() {
            "no flow log".to_owned()
        } else {
            let each: Vec<String> = own
                .iter()
                .map(|f| {
                    let mut p = Vec::new();
                    if !f.status.eq_ignore_ascii_case("ACTIVE") {
                        p.push(format!("status {}", f.status));
                    }
                    if !matches!(f.traffic_type.to_ascii_uppercase().as_str(), "REJECT" | "ALL") {
                        p.push(format!("records {} traffic only", f.traffic_type));
                    }
                    if f.deliver_status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("FAILED")) {
                        p.push(format!("delivery failed: {}", f.deliver_error.as_deref().unwrap_or("no reason given")));
                    }
                    format!("{} {}", f.flow_log_id, p.join(", "))
                })
                .collect();
            each.join(", ")
        };
        why.push(format!("{}: {problem}", vpc.vpc_id));
    }
    if failing.is_empty() {
        return ControlResult::pass(ControlId::Ec26);
    }
    failing.sort();
    why.sort();
    let n = failing.len();
    ControlResult::fail(ControlId::Ec26, failing, format!("{n} VPC(s) without a working flow log ({})", why.join("; ")))
}

/// EC2.7: EBS encryption by default is on in `region`.
pub fn evaluate_ebs_default_encryption(region: &str, enabled: bool) -> ControlResult {
    if enabled {
        return ControlResult::pass(ControlId::Ec27);
    }
    ControlResult::fail(
        ControlId::Ec27,
        vec![format!("ebs-encryption-by-default:{region}")],
        format!("EBS encryption by default is off in {region}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::controls::Status;

    fn rule(protocol: &str, from: Option<i32>, to: Option<i32>, v4: &[&str], v6: &[&str]) -> PermissionFacts {
        PermissionFacts {
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            ipv4_ranges: v4.iter().map(|s| s.to_string()).collect(),
            ipv6_ranges: v6.iter().map(|s| s.to_string()).collect(),
            ..PermissionFacts::default()
        }
    }

    fn group(id: &str, name: &str, ingress: Vec<PermissionFacts>, egress: Vec<PermissionFacts>) -> SecurityGroupFacts {
        SecurityGroupFacts {
            group_id: id.into(),
            group_name: name.into(),
            vpc_id: Some("vpc-1".into()),
            arn: format!("arn:aws:ec2:eu-west-1:123456789012:security-group/{id}"),
            ingress,
            egress,
        }
    }

    #[test]
    fn admin_ports_open_to_the_internet_fail() {
        let any4 = ["0.0.0.0/0"];
        let cases: [(&str, PermissionFacts, Status, Status); 12] = [
            ("ssh from anywhere", rule("tcp", Some(22), Some(22), &any4, &[]), Status::Fail, Status::Pass),
            ("rdp from anywhere", rule("tcp", Some(3389), Some(3389), &any4, &[]), Status::Fail, Status::Pass),
            ("a range containing 22", rule("tcp", Some(0), Some(1024), &any4, &[]), Status::Fail, Status::Pass),
            ("a range ending at 22", rule("6", Some(10), Some(22), &any4, &[]), Status::Fail, Status::Pass),
            ("a range starting at 23", rule("tcp", Some(23), Some(3388), &any4, &[]), Status::Pass, Status::Pass),
            ("udp 3389", rule("udp", Some(3389), Some(3389), &any4, &[]), Status::Fail, Status::Pass),
            ("all traffic", rule("-1", None, None, &any4, &["::/0"]), Status::Fail, Status::Fail),
            ("https", rule("tcp", Some(443), Some(443), &any4, &["::/0"]), Status::Pass, Status::Pass),
            ("icmp", rule("icmp", Some(-1), Some(-1), &any4, &["::/0"]), Status::Pass, Status::Pass),
            ("a private range", rule("tcp", Some(22), Some(22), &["10.0.0.0/8"], &[]), Status::Pass, Status::Pass),
            ("ipv6 rdp", rule("tcp", Some(3389), Some(3389), &[], &["::/0"]), Status::Pass, Status::Fail),
            ("tcp without ports", rule("tcp", None, None, &[], &["::/0"]), Status::Pass, Status::Fail),
        ];
        for (what, r, v4, v6) in cases {
            let groups = [group("sg-1", "admin", vec![r], vec![])];
            assert_eq!(evaluate_admin_ports(&groups, Anywhere::Ipv4).status, v4, "{what} (IPv4)");
            assert_eq!(evaluate_admin_ports(&groups, Anywhere::Ipv6).status, v6, "{what} (IPv6)");
        }
        let open = [group("sg-1", "admin", vec![rule("tcp", Some(0), Some(1024), &any4, &[])], vec![])];
        let r = evaluate_admin_ports(&open, Anywhere::Ipv4);
        assert_eq!(r.failing_resources, vec!["arn:aws:ec2:eu-west-1:123456789012:security-group/sg-1"]);
        assert!(r.reason.unwrap().contains("sg-1: tcp 0-1024"));
        // A prefix list or a group reference is never "anywhere".
        let referenced = PermissionFacts { groups: vec!["sg-2".into()], ..rule("tcp", Some(22), Some(22), &[], &[]) };
        assert_eq!(
            evaluate_admin_ports(&[group("sg-1", "a", vec![referenced], vec![])], Anywhere::Ipv4).status,
            Status::Pass
        );
    }

    #[test]
    fn default_groups_must_be_empty() {
        let egress = rule("-1", None, None, &["0.0.0.0/0"], &[]);
        let self_ref = PermissionFacts { groups: vec!["sg-d".into()], ..rule("-1", None, None, &[], &[]) };
        assert_eq!(evaluate_default_security_groups(&[group("sg-d", "default", vec![], vec![])]).status, Status::Pass);
        let r = evaluate_default_security_groups(&[group("sg-d", "default", vec![], vec![egress.clone()])]);
        assert_eq!(r.status, Status::Fail);
        assert!(r.reason.unwrap().contains("outbound"));
        let r = evaluate_default_security_groups(&[group("sg-d", "default", vec![self_ref], vec![])]);
        assert!(r.reason.unwrap().contains("inbound"), "a self-reference counts");
        // Other groups may have rules.
        assert_eq!(
            evaluate_default_security_groups(&[group("sg-a", "app", vec![], vec![egress])]).status,
            Status::Pass
        );
    }

    #[test]
    fn every_vpc_needs_a_working_flow_log() {
        let vpc =
            |id: &str| VpcFacts { vpc_id: id.into(), arn: format!("arn:aws:ec2:eu-west-1:123456789012:vpc/{id}") };
        let log = |resource: &str, traffic: &str| FlowLogFacts {
            flow_log_id: format!("fl-{resource}"),
            resource_id: resource.into(),
            status: "ACTIVE".into(),
            traffic_type: traffic.into(),
            deliver_status: Some("SUCCESS".into()),
            deliver_error: None,
        };
        assert_eq!(evaluate_flow_logs(&[], &[]).status, Status::Pass, "no VPC");
        for (what, logs, expected) in [
            ("REJECT", vec![log("vpc-1", "REJECT")], Status::Pass),
            ("ALL", vec![log("vpc-1", "ALL")], Status::Pass),
            ("ACCEPT only", vec![log("vpc-1", "ACCEPT")], Status::Fail),
            ("ACCEPT and REJECT", vec![log("vpc-1", "ACCEPT"), log("vpc-1", "REJECT")], Status::Pass),
            ("a subnet's", vec![log("subnet-1", "ALL")], Status::Fail),
            ("none", vec![], Status::Fail),
            (
                "failing delivery",
                vec![FlowLogFacts {
                    deliver_status: Some("FAILED".into()),
                    deliver_error: Some("Access error".into()),
                    ..log("vpc-1", "ALL")
                }],
                Status::Fail,
            ),
            ("not active", vec![FlowLogFacts { status: "INACTIVE".into(), ..log("vpc-1", "ALL") }], Status::Fail),
        ] {
            assert_eq!(evaluate_flow_logs(&[vpc("vpc-1")], &logs).status, expected, "{what}");
        }
        let r = evaluate_flow_logs(
            &[vpc("vpc-1"), vpc("vpc-2")],
            &[
                log("vpc-1", "REJECT"),
                FlowLogFacts {
                    deliver_status: Some("FAILED".into()),
                    deliver_error: Some("Access error".into()),
                    ..log("vpc-2", "ALL")
                },
            ],
        );
        assert_eq!(r.failing_resources, vec!["arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-2"]);
        assert!(r.reason.unwrap().contains("delivery failed: Access error"));
    }

    #[test]
    fn ebs_default_encryption() {
        assert_eq!(evaluate_ebs_default_encryption("eu-west-1", true).status, Status::Pass);
        let r = evaluate_ebs_default_encryption("eu-west-1", false);
        assert_eq!(
            (r.status, r.failing_resources),
            (Status::Fail, vec!["ebs-encryption-by-default:eu-west-1".to_owned()])
        );
    }
}
