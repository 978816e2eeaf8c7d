//! Block Kit for every surface, as pure functions: a grant's message (per audience), the App
//! Home, the request modals, and ephemeral answers. Buttons carry only a grant id; what happens
//! on a click is decided by Portcullis from its own records.

use chrono::{DateTime, Utc};
use portcullis_domain::grant::Grant;
use portcullis_domain::messages::TemplateSummary;
use portcullis_domain::template::{ParameterSpec, StoredTemplate};
use portcullis_domain::{AccountId, TemplateName};
use serde::{Deserialize, Serialize};
use slack_morphism::prelude::*;

use crate::card::{CardState, GrantCard, who};

/// `action_id`s of the edge's buttons; the value is always a grant id.
pub mod actions {
    pub const APPROVE: &str = "portcullis_approve";
    pub const DENY: &str = "portcullis_deny";
    pub const REVOKE: &str = "portcullis_revoke";
    pub const REVIEW_JUSTIFIED: &str = "portcullis_review_justified";
    pub const REVIEW_UNJUSTIFIED: &str = "portcullis_review_unjustified";
}

/// `callback_id`s of the shortcut and the modals.
pub mod callbacks {
    /// The global shortcut (app manifest).
    pub const SHORTCUT: &str = "portcullis_request";
    /// The modal that picks a template.
    pub const PICK: &str = "portcullis_pick";
    /// The modal of one template's parameters.
    pub const REQUEST: &str = "portcullis_request_form";
}

/// Who a copy of a grant's message is for: what it offers to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The approvers' channel: Approve / Deny while pending, the review while owed.
    Approvers,
    /// The requester's DM: Revoke (withdraw) while live.
    Requester,
}

fn md(text: impl Into<String>) -> SlackBlockText {
    SlackBlockText::MarkDown(SlackBlockMarkDownText::new(text.into()))
}

fn section(text: impl Into<String>) -> SlackBlock {
    SlackSectionBlock::new().with_text(md(text)).into()
}

fn context(text: impl Into<String>) -> SlackBlock {
    SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(SlackBlockMarkDownText::new(text.into()))]).into()
}

fn button(action: &str, label: &str, value: &str, style: Option<SlackBlockButtonStyle>) -> SlackActionBlockElement {
    let mut b = SlackBlockButtonElement::new(label.into())
        .with_action_id(SlackActionId::new(action.to_owned()))
        .with_value(value.to_owned());
    if let Some(style) = style {
        b = b.with_style(style);
    }
    SlackActionBlockElement::Button(b)
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped in text people typed.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn duration(seconds: u64) -> String {
    match seconds {
        0 => "until revoked or expired".to_owned(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn state_line(card: &GrantCard, now: DateTime<Utc>) -> String {
    match card.state_at(now) {
        CardState::Pending => format!(
            ":hourglass: *Pending*: {}/{} approval(s) from {}; lapses {}",
            card.approvals,
            card.required.max(1),
            escape(&card.approver_groups.join(", ")),
            card.expires_at.format("%Y-%m-%d %H:%M UTC")
        ),
        CardState::Active => {
            format!(":white_check_mark: *Active* until {}", card.expires_at.format("%Y-%m-%d %H:%M UTC"))
        }
        CardState::Denied => ":x: *Denied*".to_owned(),
        CardState::Expired => ":clock3: *Expired*".to_owned(),
        CardState::Revoked => ":no_entry: *Revoked*".to_owned(),
    }
}

/// The fallback text (notifications, screen readers) and blocks of a grant's message.
pub fn grant_message(card: &GrantCard, audience: Audience, now: DateTime<Utc>) -> SlackMessageContent {
    let person = escape(&who(&card.user, card.user_display_name.as_deref()));
    let mut headline = format!(
        "*{person}* asks for *{}* in `{}` for {}",
        card.template.as_str(),
        card.account.as_str(),
        duration(card.ttl_seconds)
    );
    if card.break_glass {
        headline.push_str(" :rotating_light: *break glass*");
    }
    let mut blocks = vec![section(headline)];
    let mut details = String::new();
    for (k, v) in &card.params {
        details.push_str(&format!("`{}` = `{}`\n", escape(k), escape(v)));
    }
    details.push_str(&format!("*Reason:* {}", escape(&card.reason)));
    blocks.push(section(details));
    blocks.push(section(state_line(card, now)));
    let story: Vec<String> =
        card.history.iter().map(|l| format!("{} {}", l.at.format("%H:%M"), escape(&l.text))).collect();
    if !story.is_empty() {
        blocks.push(context(story.join("\n")));
    }
    blocks.push(context(format!("grant `{}`", card.grant_id)));
    let id = card.grant_id.as_str();
    let state = card.state_at(now);
    let buttons = match audience {
        Audience::Approvers if state == CardState::Pending => vec![
            button(actions::APPROVE, "Approve", id, Some(SlackBlockButtonStyle::Primary)),
            button(actions::DENY, "Deny", id, Some(SlackBlockButtonStyle::Danger)),
        ],
        Audience::Approvers if card.review_owed => vec![
            button(actions::REVIEW_JUSTIFIED, "Justified", id, Some(SlackBlockButtonStyle::Primary)),
            button(actions::REVIEW_UNJUSTIFIED, "Unjustified (revoke)", id, Some(SlackBlockButtonStyle::Danger)),
        ],
        Audience::Requester if state == CardState::Pending => {
            vec![button(actions::REVOKE, "Withdraw", id, Some(SlackBlockButtonStyle::Danger))]
        }
        Audience::Requester if state == CardState::Active => {
            vec![button(actions::REVOKE, "Revoke", id, Some(SlackBlockButtonStyle::Danger))]
        }
        _ => Vec::new(),
    };
    if !buttons.is_empty() {
        blocks.push(SlackActionsBlock::new(buttons).into());
    }
    let text = format!(
        "{} asks for {} in {}: {}",
        who(&card.user, card.user_display_name.as_deref()),
        card.template.as_str(),
        card.account.as_str(),
        match state {
            CardState::Pending => "pending",
            CardState::Active => "active",
            CardState::Denied => "denied",
            CardState::Expired => "expired",
            CardState::Revoked => "revoked",
        }
    );
    SlackMessageContent::new().with_text(text).with_blocks(blocks)
}

fn grant_line(g: &Grant) -> String {
    let params: Vec<String> = g.params.iter().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect();
    format!(
        "*{}* in `{}` {} · {} · until {}\n_{}_ · `{}`",
        g.template.as_str(),
        g.account.as_str(),
        params.join(" "),
        g.status.as_str(),
        g.expires_at.format("%Y-%m-%d %H:%M UTC"),
        escape(&g.reason),
        g.id
    )
}

fn grant_with_buttons(g: &Grant, buttons: Vec<SlackActionBlockElement>, owner: bool) -> Vec<SlackBlock> {
    let line = if owner {
        grant_line(g)
    } else {
        format!("{} asks: {}", escape(&who(&g.user, g.user_display_name.as_deref())), grant_line(g))
    };
    vec![section(line), SlackActionsBlock::new(buttons).into()]
}

/// The App Home: the person's live grants (Revoke) and what waits for them (Approve / Deny,
/// Review).
pub fn home(live: &[Grant], approvals: &[Grant], reviews: &[Grant]) -> SlackView {
    let mut blocks: Vec<SlackBlock> = vec![SlackHeaderBlock::new("My live grants".into()).into()];
    if live.is_empty() {
        blocks.push(context("None. `/portcullis request <template> …` asks for access."));
    }
    for g in live {
        let id = g.id.as_str();
        let label = if g.status.as_str() == "pending" { "Withdraw" } else { "Revoke" };
        blocks.extend(grant_with_buttons(
            g,
            vec![button(actions::REVOKE, label, id, Some(SlackBlockButtonStyle::Danger))],
            true,
        ));
    }
    blocks.push(SlackDividerBlock::new().into());
    blocks.push(SlackHeaderBlock::new("Waiting for me".into()).into());
    if approvals.is_empty() && reviews.is_empty() {
        blocks.push(context("Nothing waits for you."));
    }
    for g in approvals {
        let id = g.id.as_str();
        blocks.extend(grant_with_buttons(
            g,
            vec![
                button(actions::APPROVE, "Approve", id, Some(SlackBlockButtonStyle::Primary)),
                button(actions::DENY, "Deny", id, Some(SlackBlockButtonStyle::Danger)),
            ],
            false,
        ));
    }
    for g in reviews {
        let id = g.id.as_str();
        blocks.extend(grant_with_buttons(
            g,
            vec![
                button(actions::REVIEW_JUSTIFIED, "Review: justified", id, Some(SlackBlockButtonStyle::Primary)),
                button(actions::REVIEW_UNJUSTIFIED, "Review: unjustified", id, Some(SlackBlockButtonStyle::Danger)),
            ],
            false,
        ));
    }
    SlackView::Home(SlackHomeView::new(blocks))
}

/// The home of a person who has not linked their account.
pub fn home_unlinked() -> SlackView {
    SlackView::Home(SlackHomeView::new(vec![section(
        "Link your Slack account to your company sign-in first: `/portcullis link`.",
    )]))
}

/// What the request modal remembers between opening and submission (`private_metadata`): the
/// template and its parameters' patterns, to check them before anything is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestForm {
    pub template: TemplateName,
    pub parameters: Vec<ParameterSpec>,
    pub max_ttl_seconds: u64,
    #[serde(default)]
    pub break_glass: bool,
}

/// `block_id`s of the request modal.
pub mod blocks {
    pub const ACCOUNT: &str = "account";
    pub const TTL: &str = "ttl";
    pub const REASON: &str = "reason";
    pub const PARAM_PREFIX: &str = "param:";
    pub const TEMPLATE: &str = "template";
    /// Every input's `action_id`.
    pub const VALUE: &str = "value";
}

fn input(block_id: &str, label: &str, hint: Option<String>, initial: Option<String>, multiline: bool) -> SlackBlock {
    let mut element =
        SlackBlockPlainTextInputElement::new().with_action_id(SlackActionId::new(blocks::VALUE.to_owned()));
    if let Some(v) = initial {
        element = element.with_initial_value(v);
    }
    if multiline {
        element = element.with_multiline(true);
    }
    let mut block = SlackInputBlock::new(label.into(), SlackInputBlockElement::PlainTextInput(element))
        .with_block_id(SlackBlockId::new(block_id.to_owned()));
    if let Some(h) = hint {
        block = block.with_hint(h.into());
    }
    block.into()
}

/// The modal of one template: an input per declared parameter (its description, its pattern as
/// the hint), the account, the lifetime and the reason.
pub fn request_modal(template: &StoredTemplate, default_account: Option<&AccountId>) -> SlackView {
    let spec = &template.spec;
    let form = RequestForm {
        template: spec.name.clone(),
        parameters: spec.parameters.clone(),
        max_ttl_seconds: spec.max_ttl_seconds,
        break_glass: spec.break_glass,
    };
    let mut blocks = vec![section(format!("*{}*: {}", spec.name.as_str(), escape(&spec.description)))];
    for p in &spec.parameters {
        let block_id = format!("{}{}", blocks::PARAM_PREFIX, p.name);
        blocks.push(input(&block_id, &p.name, Some(format!("{} (pattern {})", p.description, p.pattern)), None, false));
    }
    blocks.push(input(blocks::ACCOUNT, "AWS account", None, default_account.map(|a| a.as_str().to_owned()), false));
    blocks.push(input(
        blocks::TTL,
        "For how long",
        Some(format!("e.g. 1h; at most {}", duration(spec.max_ttl_seconds))),
        Some("1h".into()),
        false,
    ));
    blocks.push(input(
        blocks::REASON,
        "Reason",
        Some("Recorded on the grant and shown to approvers".into()),
        None,
        true,
    ));
    let metadata = serde_json::to_string(&form).unwrap_or_default();
    SlackView::Modal(
        SlackModalView::new("Request access".into(), blocks)
            .with_submit("Request".into())
            .with_close("Cancel".into())
            .with_callback_id(SlackCallbackId::new(callbacks::REQUEST.to_owned()))
            .with_private_metadata(metadata),
    )
}

/// The shortcut's first modal: pick a template.
pub fn pick_modal(templates: &[TemplateSummary]) -> SlackView {
    let options: Vec<SlackBlockChoiceItem<SlackBlockPlainTextOnly>> = templates
        .iter()
        .map(|t| SlackBlockChoiceItem::new(t.name.as_str().into(), t.name.as_str().to_owned()))
        .collect();
    let select = SlackBlockStaticSelectElement::new()
        .with_action_id(SlackActionId::new(blocks::VALUE.to_owned()))
        .with_options(options);
    let block = SlackInputBlock::new("Template".into(), SlackInputBlockElement::StaticSelect(select))
        .with_block_id(SlackBlockId::new(blocks::TEMPLATE.to_owned()));
    SlackView::Modal(
        SlackModalView::new("Request access".into(), vec![block.into()])
            .with_submit("Next".into())
            .with_close("Cancel".into())
            .with_callback_id(SlackCallbackId::new(callbacks::PICK.to_owned())),
    )
}

/// An answer only the person sees (`response_url`, or the slash command's HTTP response).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ephemeral {
    pub response_type: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Vec<SlackBlock>>,
}

impl Ephemeral {
    pub fn text(text: impl Into<String>) -> Self {
        Ephemeral { response_type: "ephemeral", text: text.into(), blocks: None }
    }
}

/// A person's grants, each with Revoke.
pub fn grant_list(grants: &[Grant]) -> Ephemeral {
    if grants.is_empty() {
        return Ephemeral::text("You have no live grants.");
    }
    let mut blocks = Vec::new();
    for g in grants {
        blocks.extend(grant_with_buttons(
            g,
            vec![button(actions::REVOKE, "Revoke", g.id.as_str(), Some(SlackBlockButtonStyle::Danger))],
            true,
        ));
    }
    Ephemeral { response_type: "ephemeral", text: format!("{} live grant(s)", grants.len()), blocks: Some(blocks) }
}

/// What waits for a person, with the buttons to decide.
pub fn pending_list(approvals: &[Grant], reviews: &[Grant]) -> Ephemeral {
    match home(&[], approvals, reviews) {
        SlackView::Home(h) => Ephemeral {
            response_type: "ephemeral",
            text: format!("{} approval(s), {} review(s) wait for you", approvals.len(), reviews.len()),
            blocks: Some(h.blocks.into_iter().skip(3).collect()),
        },
        SlackView::Modal(_) => Ephemeral::text(""),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::{grant, pending_grant};

    fn json(content: &SlackMessageContent) -> String {
        serde_json::to_string(content).unwrap()
    }

    #[test]
    fn approvers_get_buttons_carrying_only_the_grant_id() {
        let g = pending_grant();
        let now = g.created_at;
        let out = json(&grant_message(&GrantCard::of(&g), Audience::Approvers, now));
        assert!(out.contains(actions::APPROVE) && out.contains(actions::DENY), "{out}");
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        let buttons = value["blocks"].as_array().unwrap().iter().find(|b| b["type"] == "actions").unwrap();
        for b in buttons["elements"].as_array().unwrap() {
            assert_eq!(b["value"], g.id.as_str());
        }
        // The requester's copy offers to withdraw it, not to approve it.
        let mine = json(&grant_message(&GrantCard::of(&g), Audience::Requester, now));
        assert!(!mine.contains(actions::APPROVE) && mine.contains(actions::REVOKE), "{mine}");
    }

    #[test]
    fn a_decided_grant_has_no_buttons_and_text_people_typed_is_escaped() {
        let mut g = grant();
        g.reason = "<!channel> & co".into();
        g.status = portcullis_domain::grant::GrantStatus::Revoked;
        let out = json(&grant_message(&GrantCard::of(&g), Audience::Approvers, g.created_at));
        assert!(!out.contains("\"actions\""), "{out}");
        assert!(out.contains("&lt;!channel&gt; &amp; co") && !out.contains("<!channel>"), "{out}");
        assert!(out.contains("Revoked"), "{out}");
    }

    #[test]
    fn the_modal_has_an_input_per_declared_parameter_and_remembers_the_patterns() {
        let template = crate::testing::template();
        let SlackView::Modal(modal) = request_modal(&template, None) else { panic!() };
        let out = serde_json::to_string(&modal.blocks).unwrap();
        assert!(out.contains("param:bucketName") && out.contains("reason") && out.contains("ttl"), "{out}");
        let form: RequestForm = serde_json::from_str(modal.private_metadata.as_deref().unwrap()).unwrap();
        assert_eq!(form.parameters[0].pattern, template.spec.parameters[0].pattern);
    }

    #[test]
    fn the_home_lists_live_grants_and_what_waits() {
        let SlackView::Home(h) = home(&[grant()], &[pending_grant()], &[]) else { panic!() };
        let out = serde_json::to_string(&h.blocks).unwrap();
        assert!(out.contains("My live grants") && out.contains("Waiting for me"), "{out}");
        assert!(out.contains(actions::REVOKE) && out.contains(actions::APPROVE), "{out}");
    }
}
