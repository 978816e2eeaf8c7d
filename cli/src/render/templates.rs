//! Templates: the list, and one template with its parameters.

use portcullis_domain::messages::TemplateSummary;
use portcullis_domain::template::{ApprovalRule, StoredTemplate};

use super::{human_seconds, table};

/// "1 of portcullis-approvers, break glass", or "-" for self-service.
fn approval_text(approval: Option<&ApprovalRule>, break_glass: bool) -> String {
    let Some(approval) = approval else { return "-".into() };
    let mut text = format!("{} of {}", approval.required, approval.approver_groups.join("|"));
    if break_glass {
        text.push_str(", break glass");
    }
    text
}

/// `portcullis templates`.
pub(crate) fn list(templates: &[TemplateSummary]) -> String {
    let rows: Vec<Vec<String>> = templates
        .iter()
        .map(|t| {
            vec![
                t.name.to_string(),
                t.latest_version.to_string(),
                human_seconds(t.max_ttl_seconds),
                t.parameters.join(", "),
                approval_text(t.approval.as_ref(), t.break_glass),
                t.description.clone(),
            ]
        })
        .collect();
    table(&["NAME", "VERSION", "MAX TTL", "PARAMETERS", "APPROVAL", "DESCRIPTION"], &rows)
}

/// `portcullis templates show`.
pub(crate) fn show(t: &StoredTemplate) -> String {
    let spec = &t.spec;
    let mut out = format!(
        "{} (version {}): {}\nmax ttl: {}\n",
        spec.name,
        t.version,
        spec.description,
        human_seconds(spec.max_ttl_seconds)
    );
    if let Some(accounts) = &spec.allowed_accounts {
        let accounts: Vec<String> = accounts.iter().map(ToString::to_string).collect();
        out.push_str(&format!("accounts: {}\n", accounts.join(", ")));
    }
    if spec.approval.is_some() {
        out.push_str(&format!("approval: {}\n", approval_text(spec.approval.as_ref(), spec.break_glass)));
    }
    let rows: Vec<Vec<String>> =
        spec.parameters.iter().map(|p| vec![p.name.clone(), p.pattern.clone(), p.description.clone()]).collect();
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&table(&["PARAMETER", "PATTERN", "DESCRIPTION"], &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures as fx;

    #[test]
    fn the_template_list_reads_as_before() {
        assert_eq!(
            list(&fx::summaries()),
            r#"NAME         VERSION  MAX TTL  PARAMETERS          APPROVAL                                    DESCRIPTION
bucketRead   3        12h      bucketName, prefix  -                                           bucketRead for one bucket
bucketWrite  3        12h      bucketName, prefix  1 of portcullis-approvers|sre, break glass  bucketWrite for one bucket
tableReader  3        12h                          -                                           tableReader for one bucket
"#
        );
    }

    #[test]
    fn a_template_reads_as_before() {
        let expected = [
            r#"bucketWrite (version 3): bucketWrite for one bucket
max ttl: 12h

PARAMETER   PATTERN           DESCRIPTION
bucketName  [a-z0-9.-]{3,63}  the bucket
prefix      [a-z/]*           key prefix
"#,
            r#"bucketWrite (version 3): bucketWrite for one bucket
max ttl: 12h
accounts: 123456789012, 210987654321
approval: 1 of portcullis-approvers|sre, break glass

PARAMETER   PATTERN           DESCRIPTION
bucketName  [a-z0-9.-]{3,63}  the bucket
prefix      [a-z/]*           key prefix
"#,
            r#"bucketWrite (version 3): bucketWrite for one bucket
max ttl: 12h
"#,
        ];
        let shapes = [(false, false, true), (true, true, true), (false, false, false)];
        for ((approval, accounts, parameters), expected) in shapes.into_iter().zip(expected) {
            assert_eq!(show(&fx::stored(fx::spec("bucketWrite", approval, accounts, parameters))), expected);
        }
    }
}
