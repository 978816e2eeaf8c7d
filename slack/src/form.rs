//! The request modal's values checked before anything is sent: every declared parameter present
//! and matching its pattern in full (no IAM wildcards unless the parameter allows them), the
//! account, the lifetime within the template's maximum, a reason. Errors go back to the modal, by
//! block, as Slack shows them under each input.

use std::collections::BTreeMap;

use portcullis_domain::AccountId;
use portcullis_domain::messages::GrantRequest;

use crate::command::parse_duration;
use crate::render::{RequestForm, blocks};

/// block_id → what is wrong with it.
pub type FormErrors = BTreeMap<String, String>;

/// The grant request the modal describes, or what to fix.
pub fn check_request(
    form: &RequestForm,
    values: &BTreeMap<String, BTreeMap<String, String>>,
    default_account: Option<&AccountId>,
) -> Result<GrantRequest, FormErrors> {
    let value = |block: &str| values.get(block).and_then(|v| v.get(blocks::VALUE)).map(|s| s.trim().to_owned());
    let mut errors = FormErrors::new();
    let mut params = BTreeMap::new();
    for p in &form.parameters {
        let block = format!("{}{}", blocks::PARAM_PREFIX, p.name);
        let v = value(&block).unwrap_or_default();
        let anchored = regex::RegexBuilder::new(&format!("^(?:{})$", p.pattern)).size_limit(1 << 20).build();
        let problem = match anchored {
            _ if v.is_empty() => Some("needed".to_owned()),
            _ if !p.allow_wildcards && v.contains(['*', '?', '$']) => Some("no wildcards (* ? $) here".to_owned()),
            Ok(re) if !re.is_match(&v) => Some(format!("must match {}", p.pattern)),
            Ok(_) => None,
            Err(_) => Some("the template's pattern cannot be checked here".to_owned()),
        };
        match problem {
            Some(why) => {
                errors.insert(block, why);
            }
            None => {
                params.insert(p.name.clone(), v);
            }
        }
    }
    let account = match value(blocks::ACCOUNT).filter(|a| !a.is_empty()) {
        Some(a) => AccountId::parse(&a).map_err(|_| "12 digits".to_owned()),
        None => default_account.cloned().ok_or_else(|| "needed".to_owned()),
    };
    let account = account.map_err(|e| errors.insert(blocks::ACCOUNT.into(), e)).ok();
    let ttl = match parse_duration(&value(blocks::TTL).unwrap_or_else(|| "1h".into())) {
        Ok(t) if t > form.max_ttl_seconds => {
            errors.insert(blocks::TTL.into(), format!("at most {} s for this template", form.max_ttl_seconds));
            None
        }
        Ok(t) => Some(t),
        Err(e) => {
            errors.insert(blocks::TTL.into(), e.0);
            None
        }
    };
    let reason = value(blocks::REASON).unwrap_or_default();
    if reason.is_empty() {
        errors.insert(blocks::REASON.into(), "needed: it is recorded and shown to approvers".into());
    }
    match (account, ttl) {
        (Some(account), Some(ttl)) if errors.is_empty() => {
            Ok(GrantRequest { template: form.template.clone(), params, account, ttl, reason, break_glass: false })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use portcullis_domain::template::ParameterSpec;

    fn form() -> RequestForm {
        RequestForm {
            template: portcullis_domain::TemplateName::parse("bucketRead").unwrap(),
            parameters: vec![ParameterSpec {
                name: "bucketName".into(),
                description: "the bucket".into(),
                pattern: "[a-z0-9.-]{3,63}".into(),
                allow_wildcards: false,
            }],
            max_ttl_seconds: 3600,
            break_glass: false,
        }
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, BTreeMap<String, String>> {
        pairs.iter().map(|(b, v)| ((*b).to_owned(), BTreeMap::from([("value".to_owned(), (*v).to_owned())]))).collect()
    }

    #[test]
    fn a_good_form_becomes_a_request() {
        let v = values(&[
            ("param:bucketName", "exports"),
            ("account", "123456789012"),
            ("ttl", "30m"),
            ("reason", "INC-7"),
        ]);
        let r = check_request(&form(), &v, None).unwrap();
        assert_eq!((r.ttl, r.params["bucketName"].as_str(), r.reason.as_str()), (1800, "exports", "INC-7"));
    }

    #[test]
    fn patterns_are_checked_in_full_before_sending() {
        for (bucket, says) in [("Exports!", "must match"), ("ex*", "wildcards"), ("", "needed"), ("ab", "must match")] {
            let v =
                values(&[("param:bucketName", bucket), ("account", "123456789012"), ("ttl", "1h"), ("reason", "x")]);
            let e = check_request(&form(), &v, None).unwrap_err();
            assert!(e["param:bucketName"].contains(says), "{bucket}: {e:?}");
        }
        let v = values(&[("param:bucketName", "exports"), ("account", "12"), ("ttl", "2h"), ("reason", "")]);
        let e = check_request(&form(), &v, None).unwrap_err();
        assert_eq!(e.keys().cloned().collect::<Vec<_>>(), ["account", "reason", "ttl"]);
    }
}
