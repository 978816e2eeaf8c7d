//! What a revocation covered, in words.

use portcullis_domain::messages::RevocationResult;

use super::wire;

/// The grants revoked, and the accounts whose sessions no longer work.
pub(crate) fn revocation_text(result: &RevocationResult) -> String {
    let grants: Vec<String> = result.grants.iter().map(ToString::to_string).collect();
    let accounts: Vec<String> = result.accounts.iter().map(ToString::to_string).collect();
    let mut out = match grants.is_empty() {
        true => "no grant was revoked (already revoked?)\n".to_owned(),
        false => format!("revoked {}\n", grants.join(", ")),
    };
    if !accounts.is_empty() {
        out.push_str(&format!(
            "sessions issued before {} no longer work in {}\n",
            wire(&result.sessions_issued_before),
            accounts.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures as fx;

    #[test]
    fn revocations_read_as_before() {
        let expected = [
            r#"revoked g-00000000000000000000000000000001, g-00000000000000000000000000000002
sessions issued before 2026-11-22T12:00:00Z no longer work in 123456789012
"#,
            r#"no grant was revoked (already revoked?)
"#,
            r#"no grant was revoked (already revoked?)
sessions issued before 2026-11-22T12:00:00Z no longer work in 123456789012
"#,
        ];
        for (result, expected) in fx::revocations().iter().zip(expected) {
            assert_eq!(revocation_text(result), expected);
        }
    }
}
