//! The latest evidence per control.

use chrono::{DateTime, Utc};
use portcullis_domain::messages::PostureStatusResult;

use super::{human_seconds, table};

/// `portcullis posture`.
pub(crate) fn status(result: &PostureStatusResult, now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = result
        .controls
        .iter()
        .map(|c| {
            let checked = c.checked_at.map_or_else(
                || "-".to_owned(),
                |t| format!("{} ago", human_seconds(u64::try_from((now - t).num_seconds().max(0)).unwrap_or(0))),
            );
            vec![
                c.account.to_string(),
                c.region.clone(),
                c.control_id.clone(),
                c.status.to_uppercase(),
                c.failing_count.to_string(),
                checked,
                c.reason.clone().unwrap_or_else(|| c.title.clone()),
            ]
        })
        .collect();
    if rows.is_empty() {
        "no posture evidence yet (is the posture worker running?)\n".into()
    } else {
        table(&["ACCOUNT", "REGION", "CONTROL", "STATUS", "FAILING", "CHECKED", "REASON"], &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures as fx;

    #[test]
    fn posture_reads_as_before() {
        assert_eq!(
            status(&fx::posture(), fx::now()),
            r#"ACCOUNT       REGION     CONTROL       STATUS   FAILING  CHECKED  REASON
123456789012  us-east-1  CloudTrail.1  FAIL     1        1m ago   no multi-region trail is logging
123456789012  us-east-1  IAM.3         PASS     0        2h ago   IAM.3 title
123456789012  us-east-1  KMS.4         UNKNOWN  0        -        kms:ListKeys was denied
"#
        );
        let empty = PostureStatusResult { controls: vec![] };
        assert_eq!(status(&empty, fx::now()), "no posture evidence yet (is the posture worker running?)\n");
    }
}
