//! Grants as tables: the requester's own, those waiting for an approver, and a request's outcome.

use chrono::{DateTime, Utc};
use portcullis_domain::grant::{Grant, GrantStatus};
use portcullis_domain::messages::GrantPendingResult;

use super::{human_seconds, table, until, wire};

/// One line per grant: id, template, account, expiry, status, parameters.
pub(crate) fn grants_table(grants: &[Grant], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| {
            let expires = match g.status {
                GrantStatus::Pending => format!("{} once approved", human_seconds(g.ttl_seconds)),
                _ => until(g.expires_at, now),
            };
            vec![
                g.id.to_string(),
                g.template.to_string(),
                g.account.to_string(),
                expires,
                grant_status(g),
                params_text(g),
            ]
        })
        .collect();
    table(&["ID", "TEMPLATE", "ACCOUNT", "EXPIRES IN", "STATUS", "PARAMS"], &rows)
}

/// A grant's parameters as `k=v k=v`.
fn params_text(g: &Grant) -> String {
    g.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// A grant's status, with the approvals so far or the break glass.
fn grant_status(g: &Grant) -> String {
    let status = g.status.as_str();
    if g.status == GrantStatus::Pending {
        let count = g.approval.as_ref().map_or(0, |a| a.approvals.len());
        let required = g.approval.as_ref().map_or_else(|| "null".to_owned(), |a| a.required.to_string());
        return format!("pending ({count}/{required})");
    }
    match &g.break_glass {
        Some(glass) => match &glass.review {
            Some(review) => format!("{status}, break glass {}", wire(&review.verdict)),
            None => format!("{status}, break glass"),
        },
        None => status.to_owned(),
    }
}

/// Grants waiting for someone: who asked, for what, and why.
fn pending_table(grants: &[Grant], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|g| {
            let due = match (&g.break_glass, &g.approval) {
                (Some(glass), _) => until(glass.review_due, now),
                (None, Some(approval)) => until(approval.pending_until, now),
                (None, None) => "-".into(),
            };
            vec![
                g.id.to_string(),
                requester(g),
                g.template.to_string(),
                g.account.to_string(),
                params_text(g),
                due,
                g.reason.clone(),
            ]
        })
        .collect();
    table(&["ID", "USER", "TEMPLATE", "ACCOUNT", "PARAMS", "DUE IN", "REASON"], &rows)
}

/// Who asked: the display name next to the user (the key approvers act on), or the user alone when
/// the worker sent no other name.
fn requester(g: &Grant) -> String {
    match g.user_display_name.as_deref() {
        Some(name) if name != g.user => format!("{name} ({})", g.user),
        _ => g.user.clone(),
    }
}

/// `portcullis pending`: what waits for the approver's approval, and for their review.
pub(crate) fn pending(result: &GrantPendingResult, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    out.push_str(&match result.approvals.is_empty() {
        true => "nothing waits for your approval\n".to_owned(),
        false => {
            format!("waiting for your approval (portcullis approve <id>):\n{}", pending_table(&result.approvals, now))
        }
    });
    out.push_str(&match result.reviews.is_empty() {
        true => "no break-glass use waits for your review\n".to_owned(),
        false => format!(
            "break glass to review (portcullis review <id> --verdict ...):\n{}",
            pending_table(&result.reviews, now)
        ),
    });
    out
}

/// `portcullis approve`, `deny` and `review`: the grant as decided, and whose it is (the name next
/// to the user, as `pending` showed it).
pub(crate) fn decided(grant: &Grant, now: DateTime<Utc>) -> String {
    format!("{}requested by {}\n", grants_table(std::slice::from_ref(grant), now), requester(grant))
}

/// `portcullis request`: the new grant, and what happens next when it is not simply active.
pub(crate) fn requested(grant: &Grant, now: DateTime<Utc>) -> String {
    let mut out = grants_table(std::slice::from_ref(grant), now);
    if grant.status == GrantStatus::Pending
        && let Some(approval) = &grant.approval
    {
        out.push_str(&format!(
            "waiting for approval by {} of {}; `portcullis grants` shows when it is active\n",
            approval.required,
            approval.approver_groups.join(", ")
        ));
    }
    if grant.break_glass.is_some() {
        out.push_str("break glass: active now, announced, and to be reviewed by the approvers\n");
    }
    out
}

/// Each table as it read before the results were typed (the strings were produced by the untyped
/// renderers from the same fixtures).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures as fx;

    #[test]
    fn approvers_read_the_requesters_display_name_next_to_the_user() {
        let mut named = fx::grants()[1].clone();
        named.user = "u-7f3a".into();
        named.user_display_name = Some("Alice Liddell".into());
        let mut same = named.clone();
        same.user_display_name = Some("u-7f3a".into());
        assert_eq!(requester(&named), "Alice Liddell (u-7f3a)");
        assert_eq!(requester(&same), "u-7f3a", "a name that is the user is not said twice");
        let result = GrantPendingResult { approvals: vec![named], reviews: vec![] };
        assert!(pending(&result, fx::now()).contains("Alice Liddell (u-7f3a)"));
        let decided = decided(&result.approvals[0], fx::now());
        assert!(decided.ends_with("requested by Alice Liddell (u-7f3a)\n"), "{decided}");
    }

    #[test]
    fn the_grants_table_reads_as_before() {
        assert_eq!(
            grants_table(&fx::grants(), fx::now()),
            r#"ID                                  TEMPLATE     ACCOUNT       EXPIRES IN         STATUS                            PARAMS
g-00000000000000000000000000000001  bucketRead   123456789012  1h 5m              active                            bucketName=reports region=eu-west-1
g-00000000000000000000000000000002  bucketWrite  123456789012  30m once approved  pending (1/2)                     bucketName=exports
g-00000000000000000000000000000003  bucketRead   123456789012  30m                active, break glass               bucketName=reports region=eu-west-1
g-00000000000000000000000000000004  bucketRead   123456789012  30m                revoked, break glass unjustified  bucketName=reports region=eu-west-1
g-00000000000000000000000000000005  bucketRead   123456789012  expired            expired
g-00000000000000000000000000000006  bucketRead   123456789012  10m                denied                            bucketName=reports region=eu-west-1
"#
        );
    }

    #[test]
    fn the_pending_table_reads_as_before() {
        let all = fx::grants();
        let result = GrantPendingResult { approvals: all.clone(), reviews: vec![] };
        assert_eq!(
            pending(&result, fx::now()),
            format!(
                "waiting for your approval (portcullis approve <id>):\n{}no break-glass use waits for your review\n",
                r#"ID                                  USER   TEMPLATE     ACCOUNT       PARAMS                               DUE IN  REASON
g-00000000000000000000000000000001  alice  bucketRead   123456789012  bucketName=reports region=eu-west-1  -       INC-4711: reconcile payouts
g-00000000000000000000000000000002  alice  bucketWrite  123456789012  bucketName=exports                   1d 2h   INC-4711: reconcile payouts
g-00000000000000000000000000000003  alice  bucketRead   123456789012  bucketName=reports region=eu-west-1  45m     INC-4711: reconcile payouts
g-00000000000000000000000000000004  alice  bucketRead   123456789012  bucketName=reports region=eu-west-1  45m     INC-4711: reconcile payouts
g-00000000000000000000000000000005  alice  bucketRead   123456789012                                       -       INC-4711: reconcile payouts
g-00000000000000000000000000000006  alice  bucketRead   123456789012  bucketName=reports region=eu-west-1  1d 2h   INC-4711: reconcile payouts
"#
            )
        );
        let result = GrantPendingResult { approvals: vec![], reviews: all };
        assert!(pending(&result, fx::now()).starts_with("nothing waits for your approval\nbreak glass to review"));
    }

    #[test]
    fn a_request_reads_as_before() {
        let expected = [
            r#"ID                                  TEMPLATE    ACCOUNT       EXPIRES IN  STATUS  PARAMS
g-00000000000000000000000000000001  bucketRead  123456789012  1h 5m       active  bucketName=reports region=eu-west-1
"#,
            r#"ID                                  TEMPLATE     ACCOUNT       EXPIRES IN         STATUS         PARAMS
g-00000000000000000000000000000002  bucketWrite  123456789012  30m once approved  pending (1/2)  bucketName=exports
waiting for approval by 2 of portcullis-approvers, sre; `portcullis grants` shows when it is active
"#,
            r#"ID                                  TEMPLATE    ACCOUNT       EXPIRES IN  STATUS               PARAMS
g-00000000000000000000000000000003  bucketRead  123456789012  30m         active, break glass  bucketName=reports region=eu-west-1
break glass: active now, announced, and to be reviewed by the approvers
"#,
            r#"ID                                  TEMPLATE    ACCOUNT       EXPIRES IN  STATUS                            PARAMS
g-00000000000000000000000000000004  bucketRead  123456789012  30m         revoked, break glass unjustified  bucketName=reports region=eu-west-1
break glass: active now, announced, and to be reviewed by the approvers
"#,
            r#"ID                                  TEMPLATE    ACCOUNT       EXPIRES IN  STATUS   PARAMS
g-00000000000000000000000000000005  bucketRead  123456789012  expired     expired
"#,
            r#"ID                                  TEMPLATE    ACCOUNT       EXPIRES IN  STATUS  PARAMS
g-00000000000000000000000000000006  bucketRead  123456789012  10m         denied  bucketName=reports region=eu-west-1
"#,
        ];
        for (grant, expected) in fx::grants().iter().zip(expected) {
            assert_eq!(requested(grant, fx::now()), expected);
        }
    }
}
