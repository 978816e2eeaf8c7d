//! The text of `/portcullis …`, parsed once into a [`SlashCommand`].
//!
//! ```text
//! /portcullis request <template> [k=v …] [--account 123456789012] [--ttl 1h] [--break-glass] [--reason text …]
//! /portcullis list | pending | link | unlink | help
//! /portcullis approve <grant id>
//! /portcullis deny <grant id> <reason …>
//! /portcullis revoke <grant id> [reason …]
//! /portcullis review <grant id> justified|unjustified <note …>
//! ```
//!
//! `--reason` takes the rest of the line. A request without any parameter or reason opens the
//! template's modal instead.

use std::collections::BTreeMap;

use portcullis_domain::grant::Verdict;
use portcullis_domain::{AccountId, GrantId, TemplateName};

/// What the person asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum SlashCommand {
    Help,
    Link,
    Unlink,
    List,
    Pending,
    /// `request` with parameters or a reason: sent as is.
    Request(RequestArgs),
    /// `request <template>` alone: open the template's modal.
    RequestModal(TemplateName),
    Approve(GrantId),
    Deny {
        grant: GrantId,
        reason: String,
    },
    Revoke {
        grant: GrantId,
        reason: String,
    },
    Review {
        grant: GrantId,
        verdict: Verdict,
        note: String,
    },
}

/// The arguments of `request`.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestArgs {
    pub template: TemplateName,
    pub params: BTreeMap<String, String>,
    pub account: Option<AccountId>,
    pub ttl_seconds: Option<u64>,
    pub reason: String,
    pub break_glass: bool,
}

/// A command that cannot be understood; the sentence says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, CommandError> {
    Err(CommandError(message.into()))
}

/// Parse the text after `/portcullis`.
pub fn parse(text: &str) -> Result<SlashCommand, CommandError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((verb, rest)) = words.split_first() else { return Ok(SlashCommand::Help) };
    let grant = |rest: &[&str]| -> Result<GrantId, CommandError> {
        let Some(id) = rest.first() else { return err(format!("`{verb}` needs a grant id (g-…)")) };
        GrantId::parse(id).map_err(|_| CommandError(format!("`{id}` is not a grant id (g- and 32 hex digits)")))
    };
    let tail = |rest: &[&str], from: usize| rest.get(from..).map(|w| w.join(" ")).unwrap_or_default();
    match verb.to_ascii_lowercase().as_str() {
        "help" => Ok(SlashCommand::Help),
        "link" => Ok(SlashCommand::Link),
        "unlink" => Ok(SlashCommand::Unlink),
        "list" | "grants" => Ok(SlashCommand::List),
        "pending" => Ok(SlashCommand::Pending),
        "approve" => Ok(SlashCommand::Approve(grant(rest)?)),
        "deny" => {
            let grant = grant(rest)?;
            let reason = tail(rest, 1);
            if reason.is_empty() {
                return err("`deny` needs a reason after the grant id");
            }
            Ok(SlashCommand::Deny { grant, reason })
        }
        "revoke" => {
            let grant = grant(rest)?;
            let reason = tail(rest, 1);
            Ok(SlashCommand::Revoke {
                grant,
                reason: if reason.is_empty() { "revoked from Slack".into() } else { reason },
            })
        }
        "review" => {
            let grant = grant(rest)?;
            let verdict = match rest.get(1).map(|v| v.to_ascii_lowercase()) {
                Some(v) if v == "justified" => Verdict::Justified,
                Some(v) if v == "unjustified" => Verdict::Unjustified,
                _ => return err("`review` needs `justified` or `unjustified` after the grant id"),
            };
            Ok(SlashCommand::Review { grant, verdict, note: tail(rest, 2) })
        }
        "request" => parse_request(rest),
        other => err(format!("unknown command `{other}`; try `/portcullis help`")),
    }
}

fn parse_request(rest: &[&str]) -> Result<SlashCommand, CommandError> {
    let Some((name, rest)) = rest.split_first() else {
        return err("`request` needs a template name: `/portcullis request <template> k=v --ttl 1h --reason …`");
    };
    let template = TemplateName::parse(name).map_err(|_| CommandError(format!("`{name}` is not a template name")))?;
    if rest.is_empty() {
        return Ok(SlashCommand::RequestModal(template));
    }
    let mut args = RequestArgs {
        template,
        params: BTreeMap::new(),
        account: None,
        ttl_seconds: None,
        reason: String::new(),
        break_glass: false,
    };
    let mut i = 0;
    while i < rest.len() {
        let word = rest[i];
        let value = |i: usize| rest.get(i + 1).copied().ok_or_else(|| CommandError(format!("`{word}` needs a value")));
        match word {
            "--reason" => {
                args.reason = rest.get(i + 1..).map(|w| w.join(" ")).unwrap_or_default();
                break;
            }
            "--ttl" => {
                let v = value(i)?;
                args.ttl_seconds = Some(parse_duration(v)?);
                i += 2;
            }
            "--account" => {
                let v = value(i)?;
                args.account =
                    Some(AccountId::parse(v).map_err(|_| CommandError(format!("`{v}` is not a 12-digit account id")))?);
                i += 2;
            }
            "--break-glass" => {
                args.break_glass = true;
                i += 1;
            }
            flag if flag.starts_with("--") => return err(format!("unknown option `{flag}`")),
            pair => {
                let Some((k, v)) = pair.split_once('=') else {
                    return err(format!("`{pair}` is not a parameter (name=value)"));
                };
                if k.is_empty() || args.params.insert(k.to_owned(), v.to_owned()).is_some() {
                    return err(format!("parameter `{k}` is empty or given twice"));
                }
                i += 1;
            }
        }
    }
    if args.reason.trim().is_empty() {
        return err("a request needs `--reason …` (the rest of the line)");
    }
    Ok(SlashCommand::Request(args))
}

/// `90`, `90s`, `15m`, `1h`, `1h30m`, `2d`: seconds.
pub fn parse_duration(text: &str) -> Result<u64, CommandError> {
    let bad = || CommandError(format!("`{text}` is not a duration (90s, 15m, 1h, 1h30m)"));
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(bad)?;
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

/// The help text.
pub const HELP: &str = "*Portcullis*\n\
`/portcullis link`: link your Slack account to your company sign-in (once)\n\
`/portcullis request <template> k=v --ttl 1h --reason …`: ask for access (`request <template>` alone opens a form)\n\
`/portcullis list`: your grants · `/portcullis pending`: what waits for you\n\
`/portcullis approve <grant>` · `deny <grant> <reason>` · `revoke <grant> [reason]` · `review <grant> justified|unjustified <note>`\n\
`/portcullis unlink`: remove the link";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const G: &str = "g-0123456789abcdef0123456789abcdef";

    #[test]
    fn a_full_request_parses() {
        let got =
            parse("request bucketRead bucketName=exports --ttl 1h30m --account 123456789012 --reason INC-7 fix it")
                .unwrap();
        let SlashCommand::Request(args) = got else { panic!("{got:?}") };
        assert_eq!(args.template.as_str(), "bucketRead");
        assert_eq!(args.params.get("bucketName").map(String::as_str), Some("exports"));
        assert_eq!(args.ttl_seconds, Some(5400));
        assert_eq!(args.account.unwrap().as_str(), "123456789012");
        assert_eq!(args.reason, "INC-7 fix it");
        assert!(!args.break_glass);
    }

    #[test]
    fn a_template_alone_opens_the_modal_and_the_rest_parse() {
        assert_eq!(
            parse("request bucketRead").unwrap(),
            SlashCommand::RequestModal(TemplateName::parse("bucketRead").unwrap())
        );
        assert_eq!(parse("").unwrap(), SlashCommand::Help);
        assert_eq!(parse("LINK").unwrap(), SlashCommand::Link);
        assert_eq!(parse(&format!("approve {G}")).unwrap(), SlashCommand::Approve(GrantId::parse(G).unwrap()));
        assert_eq!(
            parse(&format!("review {G} unjustified no SEV")).unwrap(),
            SlashCommand::Review {
                grant: GrantId::parse(G).unwrap(),
                verdict: Verdict::Unjustified,
                note: "no SEV".into()
            }
        );
        assert!(matches!(parse(&format!("revoke {G}")).unwrap(), SlashCommand::Revoke { .. }));
    }

    #[test]
    fn mistakes_say_how_to_write_it() {
        for (text, says) in [
            ("request bucketRead bucketName=x", "--reason"),
            ("request bucketRead --ttl soon --reason x", "not a duration"),
            ("request bucketRead a=1 a=2 --reason x", "twice"),
            ("request bucketRead --colour red --reason x", "unknown option"),
            ("request 9lives --reason x", "not a template name"),
            ("approve", "needs a grant id"),
            ("approve g-1", "not a grant id"),
            (&format!("deny {G}"), "needs a reason"),
            ("frobnicate", "unknown command"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.0.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("15m").unwrap(), 900);
        assert_eq!(parse_duration("2d").unwrap(), 172_800);
        for bad in ["", "h", "1x", "1h5", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
