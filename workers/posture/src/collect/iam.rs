//! IAM: the credential report, one user's credentials, the root user's summary and MFA devices, the
//! password policy, and policy attachments (IAM.2, IAM.3, IAM.4, IAM.5, IAM.6, IAM.9, IAM.15,
//! IAM.16, IAM.18, IAM.22, IAM.27, CIS 1.13, CIS 1.16).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use portcullis_domain::ErrorCode;
use portcullis_domain::posture::controls::{
    AuthorizationFacts, CLOUDSHELL_POLICY, ManagedPolicyFacts, PasswordFacts, PasswordPolicyFacts, PrincipalKind,
    PrincipalPolicies, SUPPORT_POLICY, VirtualMfaDevice,
};
use portcullis_domain::posture::{AccessKeyFacts, CredentialReport, IamUserFacts};

use super::{AwsReader, classify};
use crate::ports::CollectError;

impl AwsReader {
    /// The credential report (AWS generates a new one only when its last is older than 4 hours),
    /// with its generation time.
    pub(super) async fn read_credential_report(&self) -> Result<CredentialReport, CollectError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            // Generating is cheap when a report younger than 4 hours exists (it is reused).
            {
                let _p = self.permit().await;
                self.clients
                    .iam
                    .generate_credential_report()
                    .send()
                    .await
                    .map_err(|e| classify("iam:GenerateCredentialReport", &e))?;
            }
            let got = {
                let _p = self.permit().await;
                self.clients.iam.get_credential_report().send().await
            };
            match got {
                Ok(report) => {
                    let generated_at = report
                        .generated_time
                        .and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()))
                        .ok_or_else(|| {
                            CollectError::new(
                                "iam:GetCredentialReport",
                                ErrorCode::ReadFailed,
                                "the report has no GeneratedTime",
                            )
                        })?;
                    let bytes = report.content.map(|b| b.into_inner()).unwrap_or_default();
                    return Ok(CredentialReport { generated_at, users: parse_credential_report(&bytes)? });
                }
                Err(e) => {
                    let not_ready = e.as_service_error().is_some_and(|s| {
                        s.is_credential_report_not_ready_exception() || s.is_credential_report_not_present_exception()
                    });
                    if !not_ready {
                        return Err(classify("iam:GetCredentialReport", &e));
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CollectError::new(
                    "iam:GetCredentialReport",
                    ErrorCode::ReadFailed,
                    "the credential report was not ready within 30 s",
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// One user's credentials, read now for a targeted rescan after a change event: `GetUser`,
    /// `GetLoginProfile`, `ListMFADevices` and `ListAccessKeys` at once, then `GetAccessKeyLastUsed`
    /// per key. `None` when the user does not exist.
    pub(super) async fn read_iam_user(&self, user: &str) -> Result<Option<IamUserFacts>, CollectError> {
        let iam = &self.clients.iam;
        let (got_user, profile, mfa, keys) = tokio::join!(
            async {
                let _p = self.permit().await;
                iam.get_user().user_name(user).send().await
            },
            async {
                let _p = self.permit().await;
                iam.get_login_profile().user_name(user).send().await
            },
            async {
                let _p = self.permit().await;
                iam.list_mfa_devices().user_name(user).send().await
            },
            async {
                let _p = self.permit().await;
                iam.list_access_keys().user_name(user).send().await
            }
        );
        let got_user = match got_user {
            Ok(out) => out.user,
            Err(e) if is_no_such_entity(&e) => return Ok(None),
            Err(e) => return Err(classify("iam:GetUser", &e)),
        };
        let password = match profile {
            Ok(out) => Some(PasswordFacts {
                set_at: out.login_profile.map(|p| p.create_date).and_then(|d| time(&d)),
                last_used: got_user.as_ref().and_then(|u| u.password_last_used.as_ref()).and_then(time),
            }),
            // No login profile: no console password.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => None,
            Err(e) => return Err(classify("iam:GetLoginProfile", &e)),
        };
        let mfa_active = match mfa {
            Ok(out) => !out.mfa_devices.is_empty(),
            Err(e) if is_no_such_entity(&e) => return Ok(None),
            Err(e) => return Err(classify("iam:ListMFADevices", &e)),
        };
        let keys = match keys {
            Ok(out) => out.access_key_metadata,
            Err(e) if is_no_such_entity(&e) => return Ok(None),
            Err(e) => return Err(classify("iam:ListAccessKeys", &e)),
        };
        let mut access_keys = Vec::new();
        for k in keys {
            let id = k.access_key_id.unwrap_or_default();
            let created = k.create_date.as_ref().and_then(time).ok_or_else(|| {
                CollectError::new("iam:ListAccessKeys", ErrorCode::ReadFailed, "a key has no valid CreateDate")
            })?;
            let last_used = {
                let _p = self.permit().await;
                match iam.get_access_key_last_used().access_key_id(&id).send().await {
                    Ok(out) => out.access_key_last_used.and_then(|u| u.last_used_date).and_then(|d| time(&d)),
                    Err(e) => return Err(classify("iam:GetAccessKeyLastUsed", &e)),
                }
            };
            access_keys.push(AccessKeyFacts {
                user: user.to_owned(),
                key: id,
                active: k.status.map(|s| s.as_str() == "Active").unwrap_or(false),
                created,
                last_used,
            });
        }
        Ok(Some(IamUserFacts {
            user: user.to_owned(),
            created: got_user.as_ref().and_then(|u| time(&u.create_date)),
            password,
            mfa_active,
            access_keys,
        }))
    }

    /// The account password policy (`None` when there is none: `NoSuchEntity`).
    pub(super) async fn read_password_policy(&self) -> Result<Option<PasswordPolicyFacts>, CollectError> {
        let _p = self.permit().await;
        match self.clients.iam.get_account_password_policy().send().await {
            Ok(out) => Ok(out.password_policy.map(|p| PasswordPolicyFacts {
                minimum_length: p.minimum_password_length,
                reuse_prevention: p.password_reuse_prevention,
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(None),
            Err(e) => Err(classify("iam:GetAccountPasswordPolicy", &e)),
        }
    }

    /// The assigned virtual MFA devices (`ListVirtualMFADevices`, every page).
    pub(super) async fn read_virtual_mfa_devices(&self) -> Result<Vec<VirtualMfaDevice>, CollectError> {
        use aws_sdk_iam::types::AssignmentStatusType;
        let mut devices = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = {
                let _p = self.permit().await;
                self.clients
                    .iam
                    .list_virtual_mfa_devices()
                    .assignment_status(AssignmentStatusType::Assigned)
                    .set_marker(marker.take())
                    .send()
                    .await
                    .map_err(|e| classify("iam:ListVirtualMFADevices", &e))?
            };
            devices.extend(out.virtual_mfa_devices().iter().map(|d| VirtualMfaDevice {
                serial_number: d.serial_number().to_owned(),
                user_arn: d.user().map(|u| u.arn().to_owned()),
            }));
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
                _ => return Ok(devices),
            }
        }
    }

    /// Every user and group with its attached and inline policies, and every customer managed
    /// policy with its default version (`GetAccountAuthorizationDetails`, every page; AWS managed
    /// policies are not listed: attachments name them by ARN); roles only as holders of the two AWS
    /// managed policies IAM.18 and IAM.27 look for (`ListEntitiesForPolicy`): an account's roles can
    /// be thousands, and no control here needs their other policies.
    pub(super) async fn read_authorization_details(&self) -> Result<AuthorizationFacts, CollectError> {
        let mut facts = self.read_users_groups_and_policies().await?;
        for policy in [SUPPORT_POLICY, CLOUDSHELL_POLICY] {
            let arn = format!("arn:aws:iam::aws:policy/{policy}");
            for role in self.roles_holding(&arn).await? {
                facts.principals.push(PrincipalPolicies {
                    kind: PrincipalKind::Role,
                    arn: format!("arn:aws:iam::{}:role/{role}", self.account_id),
                    name: role,
                    attached: vec![arn.clone()],
                    inline: Vec::new(),
                });
            }
        }
        Ok(facts)
    }

    /// The roles `policy_arn` is attached to (none when the policy does not exist).
    async fn roles_holding(&self, policy_arn: &str) -> Result<Vec<String>, CollectError> {
        use aws_sdk_iam::types::EntityType;
        let mut roles = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = {
                let _p = self.permit().await;
                self.clients
                    .iam
                    .list_entities_for_policy()
                    .policy_arn(policy_arn)
                    .entity_filter(EntityType::Role)
                    .set_marker(marker.take())
                    .send()
                    .await
            };
            let out = match out {
                Ok(out) => out,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => return Ok(roles),
                Err(e) => return Err(classify("iam:ListEntitiesForPolicy", &e)),
            };
            roles.extend(out.policy_roles().iter().filter_map(|r| r.role_name().map(str::to_owned)));
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
                _ => return Ok(roles),
            }
        }
    }

    /// Users, groups and customer managed policies from `GetAccountAuthorizationDetails`.
    async fn read_users_groups_and_policies(&self) -> Result<AuthorizationFacts, CollectError> {
        use aws_sdk_iam::types::EntityType;
        let mut facts = AuthorizationFacts::default();
        let mut marker: Option<String> = None;
        loop {
            let out = {
                let _p = self.permit().await;
                self.clients
                    .iam
                    .get_account_authorization_details()
                    .filter(EntityType::User)
                    .filter(EntityType::Group)
                    .filter(EntityType::LocalManagedPolicy)
                    .set_marker(marker.take())
                    .send()
                    .await
                    .map_err(|e| classify("iam:GetAccountAuthorizationDetails", &e))?
            };
            let arns = |list: &[aws_sdk_iam::types::AttachedPolicy]| -> Vec<String> {
                list.iter().filter_map(|a| a.policy_arn().map(str::to_owned)).collect()
            };
            let names = |list: &[aws_sdk_iam::types::PolicyDetail]| -> Vec<String> {
                list.iter().map(|p| p.policy_name().unwrap_or_default().to_owned()).collect()
            };
            let principal = |kind, name: Option<&str>, arn: Option<&str>, attached, inline| PrincipalPolicies {
                kind,
                name: name.unwrap_or_default().to_owned(),
                arn: arn.unwrap_or_default().to_owned(),
                attached,
                inline,
            };
            for u in out.user_detail_list() {
                let (attached, inline) = (arns(u.attached_managed_policies()), names(u.user_policy_list()));
                facts.principals.push(principal(PrincipalKind::User, u.user_name(), u.arn(), attached, inline));
            }
            for g in out.group_detail_list() {
                let (attached, inline) = (arns(g.attached_managed_policies()), names(g.group_policy_list()));
                facts.principals.push(principal(PrincipalKind::Group, g.group_name(), g.arn(), attached, inline));
            }
            for r in out.role_detail_list() {
                let (attached, inline) = (arns(r.attached_managed_policies()), names(r.role_policy_list()));
                facts.principals.push(principal(PrincipalKind::Role, r.role_name(), r.arn(), attached, inline));
            }
            for p in out.policies() {
                let default = p.policy_version_list().iter().find(|v| v.is_default_version());
                facts.policies.push(ManagedPolicyFacts {
                    arn: p.arn().unwrap_or_default().to_owned(),
                    name: p.policy_name().unwrap_or_default().to_owned(),
                    attachment_count: i64::from(p.attachment_count().unwrap_or(0)),
                    document: default.and_then(|v| v.document().map(str::to_owned)),
                });
            }
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
                _ => return Ok(facts),
            }
        }
    }

    /// (`AccountAccessKeysPresent`, `AccountMFAEnabled`) from `GetAccountSummary`.
    pub(super) async fn read_root_summary(&self) -> Result<(i64, i64), CollectError> {
        use aws_sdk_iam::types::SummaryKeyType;
        let _p = self.permit().await;
        let out =
            self.clients.iam.get_account_summary().send().await.map_err(|e| classify("iam:GetAccountSummary", &e))?;
        let map = out.summary_map.unwrap_or_default();
        let get = |k: SummaryKeyType| map.get(&k).copied().map(i64::from);
        match (get(SummaryKeyType::AccountAccessKeysPresent), get(SummaryKeyType::AccountMfaEnabled)) {
            (Some(keys), Some(mfa)) => Ok((keys, mfa)),
            _ => Err(CollectError::new(
                "iam:GetAccountSummary",
                ErrorCode::ReadFailed,
                "the summary lacks the root user's keys or MFA",
            )),
        }
    }
}

fn time(d: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos())
}

fn is_no_such_entity<E>(
    e: &aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("NoSuchEntity")
}

/// A date column of the credential report: an RFC 3339 time, or `N/A`, `no_information`,
/// `not_supported` (none).
fn report_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value).ok().map(|d| d.with_timezone(&Utc))
}

/// Parse the IAM credential report (CSV) into users. The root user's row is skipped (IAM.4 and
/// IAM.9 cover it).
pub fn parse_credential_report(bytes: &[u8]) -> Result<Vec<IamUserFacts>, CollectError> {
    let bad = |m: String| CollectError::new("iam:GetCredentialReport", ErrorCode::ReadFailed, m);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let col: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    let need = |name: &str| col.get(name).copied().ok_or_else(|| bad(format!("the report has no `{name}` column")));
    let user_col = need("user")?;
    let mut users = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad(e.to_string()))?;
        let field = |name: &str| need(name).map(|i| record.get(i).unwrap_or_default());
        let user = record.get(user_col).unwrap_or_default();
        if user == "<root_account>" {
            continue;
        }
        let mut access_keys = Vec::new();
        for n in [1, 2] {
            let active = field(&format!("access_key_{n}_active"))? == "true";
            let Some(created) = report_time(field(&format!("access_key_{n}_last_rotated"))?) else {
                continue; // "N/A": no such key
            };
            access_keys.push(AccessKeyFacts {
                user: user.to_owned(),
                key: format!("access_key_{n}"),
                active,
                created,
                last_used: report_time(field(&format!("access_key_{n}_last_used_date"))?),
            });
        }
        let password = (field("password_enabled")? == "true").then(|| {
            Ok::<_, CollectError>(PasswordFacts {
                set_at: report_time(field("password_last_changed")?),
                last_used: report_time(field("password_last_used")?),
            })
        });
        users.push(IamUserFacts {
            user: user.to_owned(),
            created: report_time(field("user_creation_time")?),
            password: password.transpose()?,
            mfa_active: field("mfa_active")? == "true",
            access_keys,
        });
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_report_parses_both_keys_and_skips_root() {
        let csv = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n\
<root_account>,arn:aws:iam::1:root,2020-01-01T00:00:00+00:00,not_supported,2026-01-01T00:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
alice,arn:aws:iam::1:user/alice,2020-01-01T00:00:00+00:00,true,no_information,2020-01-02T00:00:00+00:00,N/A,false,true,2026-01-01T00:00:00+00:00,2026-02-01T00:00:00+00:00,us-east-1,sts,false,2025-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A\n\
bob,arn:aws:iam::1:user/bob,2020-01-01T00:00:00+00:00,false,not_supported,not_supported,not_supported,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n";
        let users = parse_credential_report(csv.as_bytes()).unwrap();
        assert_eq!(users.iter().map(|u| u.user.as_str()).collect::<Vec<_>>(), vec!["alice", "bob"]);
        assert!(users[1].access_keys.is_empty());
        let keys = &users[0].access_keys;
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].user, "alice");
        assert!(keys[0].active);
        assert_eq!(keys[1].key, "access_key_2");
        assert!(!keys[1].active);
        assert_eq!(keys[0].last_used, report_time("2026-02-01T00:00:00+00:00"));
        assert_eq!(keys[1].last_used, None);
        let alice = &users[0];
        let password = alice.password.as_ref().expect("alice has a console password");
        assert_eq!((password.last_used, password.set_at), (None, report_time("2020-01-02T00:00:00+00:00")));
        assert!(!alice.mfa_active);
        assert_eq!(users[1].password, None);
        assert!(parse_credential_report(b"nothing,useful\n").is_err());
    }
}
