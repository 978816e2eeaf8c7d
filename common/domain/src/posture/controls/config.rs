//! Config.1: AWS Config records every resource, with the service-linked role.

use super::{ControlId, ControlResult};

/// The role Security Hub requires Config to record with.
pub const CONFIG_SERVICE_LINKED_ROLE: &str = "role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig";

/// One configuration recorder and its status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigRecorderFacts {
    pub name: String,
    pub role_arn: String,
    /// `recordingGroup.allSupported`.
    pub all_supported: bool,
    /// `recordingGroup.includeGlobalResourceTypes`.
    pub include_global_resource_types: bool,
    /// From `DescribeConfigurationRecorderStatus` (`None`: no status returned).
    pub recording: Option<bool>,
    /// `lastStatus`: `Pending`, `Success`, `Failure` (AWS), or as the endpoint spells it.
    pub last_status: Option<String>,
}

impl ConfigRecorderFacts {
    fn problems(&self, home: bool, require_service_linked_role: bool) -> Vec<&'static str> {
        let mut p = Vec::new();
        if self.recording != Some(true) {
            p.push("not recording");
        }
        if self.last_status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("failure")) {
            p.push("its last recording failed");
        }
        if !self.all_supported {
            p.push("does not record all supported resource types");
        }
        if home && !self.include_global_resource_types {
            p.push("does not record global resource types in the home region");
        }
        if require_service_linked_role && !self.role_arn.ends_with(CONFIG_SERVICE_LINKED_ROLE) {
            p.push("does not use the service-linked role");
        }
        p
    }
}

/// Config.1 in `region` (global resource types are required in the `home` region only): one
/// recorder without problems passes; none fails.
pub fn evaluate_config(
    region: &str,
    home: bool,
    recorders: &[ConfigRecorderFacts],
    require_service_linked_role: bool,
) -> ControlResult {
    if recorders.is_empty() {
        return ControlResult::fail(
            ControlId::Config1,
            vec![format!("config-recorder:{region}")],
            format!("AWS Config has no configuration recorder in {region}"),
        );
    }
    let problems: Vec<(&ConfigRecorderFacts, Vec<&str>)> =
        recorders.iter().map(|r| (r, r.problems(home, require_service_linked_role))).collect();
    if problems.iter().any(|(_, p)| p.is_empty()) {
        return ControlResult::pass(ControlId::Config1);
    }
    let why: Vec<String> = problems.iter().map(|(r, p)| format!("{}: {}", r.name, p.join(", "))).collect();
    ControlResult::fail(
        ControlId::Config1,
        recorders.iter().map(|r| format!("config-recorder:{region}/{}", r.name)).collect(),
        format!("no configuration recorder in {region} records everything ({})", why.join("; ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::controls::Status;

    fn recorder() -> ConfigRecorderFacts {
        ConfigRecorderFacts {
            name: "default".into(),
            role_arn: format!("arn:aws:iam::123456789012:{CONFIG_SERVICE_LINKED_ROLE}"),
            all_supported: true,
            include_global_resource_types: true,
            recording: Some(true),
            last_status: Some("SUCCESS".into()),
        }
    }

    #[test]
    fn a_recorder_must_record_everything() {
        assert_eq!(evaluate_config("eu-west-1", false, &[recorder()], true).status, Status::Pass);
        // moto says PENDING forever: only Failure fails.
        let pending = ConfigRecorderFacts { last_status: Some("PENDING".into()), ..recorder() };
        assert_eq!(evaluate_config("eu-west-1", true, &[pending], true).status, Status::Pass);
        let none = evaluate_config("eu-west-1", false, &[], true);
        assert_eq!((none.status, none.failing_resources), (Status::Fail, vec!["config-recorder:eu-west-1".to_owned()]));
        let broken = [
            ("not recording", ConfigRecorderFacts { recording: Some(false), ..recorder() }),
            ("not recording", ConfigRecorderFacts { recording: None, ..recorder() }),
            ("failed", ConfigRecorderFacts { last_status: Some("Failure".into()), ..recorder() }),
            ("all supported", ConfigRecorderFacts { all_supported: false, ..recorder() }),
            ("service-linked", ConfigRecorderFacts { role_arn: "arn:aws:iam::1:role/config".into(), ..recorder() }),
        ];
        for (why, r) in broken {
            let result = evaluate_config("eu-west-1", false, std::slice::from_ref(&r), true);
            assert_eq!(result.status, Status::Fail, "{why}");
            assert!(result.reason.as_deref().unwrap().contains(why), "{why}: {:?}", result.reason);
        }
        // A custom role passes when the setting allows it.
        let custom = ConfigRecorderFacts { role_arn: "arn:aws:iam::1:role/config".into(), ..recorder() };
        assert_eq!(evaluate_config("eu-west-1", false, std::slice::from_ref(&custom), false).status, Status::Pass);
        // Global resource types: required in the home region only.
        let regional = ConfigRecorderFacts { include_global_resource_types: false, ..recorder() };
        assert_eq!(evaluate_config("eu-west-1", false, std::slice::from_ref(&regional), true).status, Status::Pass);
        let r = evaluate_config("us-east-1", true, std::slice::from_ref(&regional), true);
        assert_eq!(r.status, Status::Fail);
        assert!(r.reason.unwrap().contains("global resource types"));
    }
}
