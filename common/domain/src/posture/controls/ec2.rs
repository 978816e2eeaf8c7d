//! EC2 controls: security groups (EC2.2, EC2.53, EC2.54), VPC flow logs (EC2.6), EBS default
//! encryption (EC2.7), instance metadata (EC2.8) and network ACLs (EC2.21).

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

// ------------------------------------------------------------------ EC2.8

/// One EC2 instance's metadata options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceFacts {
    pub instance_id: String,
    pub arn: String,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down`, `terminated`.
    pub state: String,
    /// `MetadataOptions.HttpTokens`: `required` (IMDSv2 only) or `optional`.
    pub http_tokens: Option<String>,
    /// `MetadataOptions.HttpEndpoint`: `enabled` or `disabled`.
    pub http_endpoint: Option<String>,
}

/// EC2.8: every instance that is not terminated requires IMDSv2 (`HttpTokens` `required`), or has
/// no metadata endpoint at all (`HttpEndpoint` `disabled`). A region without instances passes.
pub fn evaluate_imdsv2(instances: &[InstanceFacts]) -> ControlResult {
    let mut failing: Vec<String> = instances
        .iter()
        .filter(|i| !matches!(i.state.as_str(), "terminated" | "shutting-down"))
        .filter(|i| i.http_endpoint.as_deref() != Some("disabled") && i.http_tokens.as_deref() != Some("required"))
        .map(|i| i.arn.clone())
        .collect();
    failing.sort();
    if failing.is_empty() {
        return ControlResult::pass(ControlId::Ec28);
    }
    let n = failing.len();
    ControlResult::fail(ControlId::Ec28, failing, format!("{n} instance(s) accept IMDSv1 (HttpTokens is not required)"))
}

// ------------------------------------------------------------------ EC2.21

/// One entry of a network ACL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NaclEntryFacts {
    pub rule_number: i32,
    pub egress: bool,
    /// `-1` (all), or a protocol number (`6` TCP, `17` UDP).
    pub protocol: String,
    /// `allow` or `deny`.
    pub allow: bool,
    pub ipv4_cidr: Option<String>,
    pub ipv6_cidr: Option<String>,
    /// The port range (TCP and UDP); `None` with protocol `-1`: every port.
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
}

impl NaclEntryFacts {
    /// Whether the entry matches TCP traffic to `port` from the whole of `cidr`.
    fn matches(&self, cidr: &str, port: i32) -> bool {
        let source = if cidr.contains(':') { self.ipv6_cidr.as_deref() } else { self.ipv4_cidr.as_deref() };
        if self.egress || source != Some(cidr) {
            return false;
        }
        match self.protocol.to_ascii_lowercase().as_str() {
            "-1" | "all" => true,
            "6" | "tcp" => match (self.from_port, self.to_port) {
                (Some(from), Some(to)) => from <= port && port <= to,
                _ => true,
            },
            _ => false,
        }
    }
}

/// One network ACL with its entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NaclFacts {
    pub nacl_id: String,
    pub arn: String,
    pub entries: Vec<NaclEntryFacts>,
}

/// EC2.21: no network ACL lets `0.0.0.0/0` or `::/0` reach TCP port 22 or 3389. Entries are
/// evaluated as AWS does, in rule-number order, the first match deciding: an allow that a lower
/// numbered deny of the same source and port shadows lets nothing in, and a deny after an allow is
/// too late. Only entries whose source is exactly the whole internet decide (a narrower deny does not
/// close the port to everyone else).
pub fn evaluate_nacl_admin_ports(nacls: &[NaclFacts]) -> ControlResult {
    let (mut failing, mut why) = (Vec::new(), Vec::new());
    for acl in nacls {
        let mut entries: Vec<&NaclEntryFacts> = acl.entries.iter().filter(|e| !e.egress).collect();
        entries.sort_by_key(|e| e.rule_number);
        let mut open = Vec::new();
        for cidr in ["0.0.0.0/0", "::/0"] {
            for port in ADMIN_PORTS {
                if let Some(first) = entries.iter().find(|e| e.matches(cidr, port)).filter(|e| e.allow) {
                    open.push(format!("rule {} lets {cidr} reach {port}", first.rule_number));
                }
            }
        }
        if !open.is_empty() {
            failing.push(acl.arn.clone());
            why.push(format!("{}: {}", acl.nacl_id, open.join(", ")));
        }
    }
    if failing.is_empty() {
        return ControlResult::pass(ControlId::Ec221);
    }
    failing.sort();
    why.sort();
    let n = failing.len();
    ControlResult::fail(
        ControlId::Ec221,
        failing,
        format!("{n} network ACL(s) let the internet reach port 22 or 3389 ({})", why.join("; ")),
    )
}

#[cfg(test)]
mod instance_and_nacl_tests {
    use super::*;
    use crate::posture::controls::Status;

    #[test]
    fn instances_require_imdsv2_unless_the_endpoint_is_off() {
        let i = |id: &str, state: &str, tokens: Option<&str>, endpoint: Option<&str>| InstanceFacts {
            instance_id: id.into(),
            arn: format!("arn:aws:ec2:us-east-1:123456789012:instance/{id}"),
            state: state.into(),
            http_tokens: tokens.map(str::to_owned),
            http_endpoint: endpoint.map(str::to_owned),
        };
        let ok = [
            i("a", "running", Some("required"), Some("enabled")),
            i("b", "stopped", Some("optional"), Some("disabled")),
            i("c", "terminated", Some("optional"), Some("enabled")),
        ];
        assert_eq!(evaluate_imdsv2(&ok).status, Status::Pass);
        assert_eq!(evaluate_imdsv2(&[]).status, Status::Pass);
        let mut all = ok.to_vec();
        all.push(i("d", "stopped", Some("optional"), Some("enabled")));
        all.push(i("e", "running", None, None));
        let r = evaluate_imdsv2(&all);
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.failing_resources.len(), 2);
        assert!(r.failing_resources[0].ends_with("instance/d"));
    }

    fn entry(n: i32, allow: bool, protocol: &str, v4: Option<&str>, ports: Option<(i32, i32)>) -> NaclEntryFacts {
        NaclEntryFacts {
            rule_number: n,
            egress: false,
            protocol: protocol.into(),
            allow,
            ipv4_cidr: v4.map(str::to_owned),
            ipv6_cidr: None,
            from_port: ports.map(|p| p.0),
            to_port: ports.map(|p| p.1),
        }
    }

    fn acl(entries: Vec<NaclEntryFacts>) -> NaclFacts {
        NaclFacts {
            nacl_id: "acl-1".into(),
            arn: "arn:aws:ec2:us-east-1:123456789012:network-acl/acl-1".into(),
            entries,
        }
    }

    #[test]
    fn the_first_matching_entry_in_rule_order_decides() {
        let any = Some("0.0.0.0/0");
        let default_deny = entry(32767, false, "-1", any, None);
        let allow_all = entry(100, true, "-1", any, None);
        // AWS's default ACL: everything in.
        let r = evaluate_nacl_admin_ports(&[acl(vec![allow_all.clone(), default_deny.clone()])]);
        assert_eq!(r.status, Status::Fail);
        assert!(r.reason.as_deref().unwrap().contains("rule 100 lets 0.0.0.0/0 reach 22"), "{r:?}");
        // Lower-numbered denies of both ports shadow the allow (listed out of order on purpose).
        let shadowed = vec![
            allow_all.clone(),
            entry(20, false, "6", any, Some((3389, 3389))),
            entry(10, false, "6", any, Some((0, 1024))),
            default_deny.clone(),
        ];
        assert_eq!(evaluate_nacl_admin_ports(&[acl(shadowed.clone())]).status, Status::Pass);
        // Only 22 denied: 3389 is still open.
        let r = evaluate_nacl_admin_ports(&[acl(vec![allow_all.clone(), entry(10, false, "6", any, Some((22, 22)))])]);
        assert!(
            r.reason.as_deref().unwrap().contains("reach 3389") && !r.reason.as_deref().unwrap().contains("reach 22")
        );
        // A deny after the allow is too late.
        let late = vec![allow_all.clone(), entry(200, false, "6", any, Some((22, 3389)))];
        assert_eq!(evaluate_nacl_admin_ports(&[acl(late)]).status, Status::Fail);
        // A narrower deny does not close the port to the rest of the internet.
        let narrow = vec![entry(10, false, "-1", Some("10.0.0.0/8"), None), allow_all.clone()];
        assert_eq!(evaluate_nacl_admin_ports(&[acl(narrow)]).status, Status::Fail);
        // An allow from a narrower range, of other ports, or UDP/ICMP only is not the internet to 22/3389.
        let fine = vec![
            entry(100, true, "6", Some("10.0.0.0/8"), Some((22, 22))),
            entry(110, true, "6", any, Some((443, 443))),
            entry(120, true, "17", any, Some((0, 65535))),
            entry(130, true, "1", any, None),
            default_deny,
        ];
        assert_eq!(evaluate_nacl_admin_ports(&[acl(fine)]).status, Status::Pass);
        // Egress entries never count; IPv6 is judged on its own.
        let egress = NaclEntryFacts { egress: true, ..allow_all.clone() };
        assert_eq!(evaluate_nacl_admin_ports(&[acl(vec![egress])]).status, Status::Pass);
        let v6 = NaclEntryFacts { ipv4_cidr: None, ipv6_cidr: Some("::/0".into()), rule_number: 101, ..allow_all };
        let mut with_v6 = shadowed;
        with_v6.push(v6);
        let r = evaluate_nacl_admin_ports(&[acl(with_v6)]);
        assert!(r.reason.as_deref().unwrap().contains("rule 101 lets ::/0 reach 22"), "{r:?}");
    }
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
