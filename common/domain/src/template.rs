//! Statement templates: named, versioned recipes for IAM policy statements.
//!
//! A template declares its parameters (each with a pattern its value must match) and one or more IAM
//! statements written as JSON. Every *string value* inside a statement is a minijinja template over the
//! declared parameters; object keys and the JSON structure itself are fixed when the template is
//! defined. A rendered value is inserted back as a JSON string by the serializer, so quotes, braces,
//! backslashes or newlines in a parameter value can never add a key, close a string or change the shape
//! of a statement. On top of that:
//!
//! - templates are checked when they are put: every variable they use must be a declared parameter
//!   (strict undefined catches the rest at render time), and every declared parameter must be used;
//! - parameter values must match their declared pattern *in full* (patterns are anchored for you);
//! - IAM wildcards (`*`, `?`) and policy variables (`$`) in a value are refused unless the parameter
//!   says `allow_wildcards`, so a value of `*` cannot widen `arn:aws:s3:::{{ bucket }}/*` to every bucket;
//! - the rendered statement must be a valid IAM identity-policy statement, and Allow statements must
//!   pass the configured [`Guardrails`].
//!
//! Everything here is pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, RequestError};
use crate::guardrails::{GuardrailViolation, Guardrails, MAX_ACTION_CHARS, Refused};
use crate::ids::{AccountId, TemplateName};

/// Most statements one template may hold.
pub const MAX_STATEMENTS: usize = 10;
/// Longest accepted parameter value, in characters.
pub const MAX_PARAM_VALUE_CHARS: usize = 256;
/// Largest template definition (its JSON), in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 16 * 1024;
/// Longest TTL any template may declare: 7 days.
pub const MAX_TEMPLATE_TTL_SECONDS: u64 = 7 * 24 * 3600;
/// Shortest TTL a template may declare.
pub const MIN_TEMPLATE_TTL_SECONDS: u64 = 60;
/// Longest resource ARN accepted in a statement.
pub const MAX_RESOURCE_CHARS: usize = 2048;
/// Largest rendered statement (its JSON), in bytes: a render that repeats a parameter many times
/// cannot build an unbounded document.
pub const MAX_RENDERED_STATEMENT_BYTES: usize = 8 * 1024;
/// Fuel given to one statement-string render; bounds the work a hostile template can cause.
const RENDER_FUEL: u64 = 10_000;

static PARAM_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$").expect("static regex"));
static ACTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\*|[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+)$").expect("static regex"));

/// A template as written by its author (the body of `template.put`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// Unique name: a letter, then up to 63 letters, digits, `_` or `-`.
    pub name: TemplateName,
    /// What the access is for, shown to requesters and approvers.
    pub description: String,
    /// The parameters a requester must supply; nothing else may be referenced.
    #[serde(default)]
    pub parameters: Vec<ParameterSpec>,
    /// IAM policy statements. Every string value is a minijinja template over the parameters.
    pub statements: Vec<Value>,
    /// Longest lifetime of a grant made from this template, in seconds.
    pub max_ttl_seconds: u64,
    /// AWS account ids this template may be used in; absent means every configured account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_accounts: Option<Vec<AccountId>>,
    /// When present, a grant from this template needs `required` approvals by distinct members of
    /// `approver_groups` (never the requester) before it is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRule>,
    /// Allow break-glass requests: active at once without approval, announced, and reviewed
    /// afterwards by the approvers. Needs `approval`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
}

/// Most approvals a template may require.
pub const MAX_REQUIRED_APPROVALS: u32 = 5;
/// Most approver groups a template may name.
pub const MAX_APPROVER_GROUPS: usize = 20;

/// Who must approve a grant, and how many of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// Distinct approvals needed (1 to 5).
    pub required: u32,
    /// Groups (from the verified token, as the directory lets them act) whose members may approve.
    pub approver_groups: Vec<String>,
}

impl ApprovalRule {
    fn check(&self) -> Result<(), TemplateInvalid> {
        if !(1..=MAX_REQUIRED_APPROVALS).contains(&self.required) {
            return Err(TemplateInvalid(format!("approval.required must be 1 to {MAX_REQUIRED_APPROVALS}")));
        }
        if self.approver_groups.is_empty() || self.approver_groups.len() > MAX_APPROVER_GROUPS {
            return Err(TemplateInvalid(format!("approval.approver_groups needs 1 to {MAX_APPROVER_GROUPS} groups")));
        }
        if let Some(bad) = self
            .approver_groups
            .iter()
            .find(|g| g.trim().is_empty() || g.len() > 256 || g.chars().any(char::is_control))
        {
            return Err(TemplateInvalid(format!("approval.approver_groups has an unusable group name {bad:?}")));
        }
        Ok(())
    }
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterSpec {
    /// The name used in statements, e.g. `bucketName` in `{{ bucketName }}`.
    pub name: String,
    /// What the requester should supply.
    pub description: String,
    /// A regular expression the *whole* value must match (it is anchored for you).
    pub pattern: String,
    /// Allow IAM wildcards (`*`, `?`) and `$` in the value. Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_wildcards: bool,
}

/// A template as stored: the spec plus its version and provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoredTemplate {
    #[serde(flatten)]
    pub spec: TemplateSpec,
    /// Version number, starting at 1; every put of an existing name adds one.
    pub version: u32,
    /// The verified user who put this version.
    pub created_by: String,
    /// When this version was put (RFC 3339).
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Why a template definition was refused (`template_invalid`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateInvalid(pub String);

impl From<TemplateInvalid> for RequestError {
    fn from(e: TemplateInvalid) -> Self {
        RequestError::new(ErrorCode::TemplateInvalid, format!("template is invalid: {}", e.0))
    }
}

/// Why a render was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error("parameter `{param}` {reason}")]
    Param { param: String, reason: String },
    #[error("the rendered statement is not a valid IAM statement: {0}")]
    Statement(String),
    #[error(transparent)]
    Guardrail(#[from] GuardrailViolation),
}

impl From<RenderError> for RequestError {
    fn from(e: RenderError) -> Self {
        match &e {
            RenderError::Param { param, .. } => {
                RequestError::new(ErrorCode::ParamInvalid, format!("{e}; fix the value and send the request again"))
                    .with_details(serde_json::json!({ "param": param }))
            }
            RenderError::Statement(_) => RequestError::new(
                ErrorCode::TemplateInvalid,
                format!("{e}; ask the template owner to fix the template"),
            ),
            RenderError::Guardrail(g) => match g.refused {
                Refused::UnknownAction => RequestError::new(
                    ErrorCode::ActionUnknown,
                    format!("{e}; ask the template owner to fix the template or choose an existing action"),
                )
                .with_details(serde_json::json!({ "action": g.action })),
                Refused::Action => RequestError::new(
                    ErrorCode::GuardrailViolation,
                    format!("{e}; this access cannot be granted through Portcullis"),
                )
                .with_details(serde_json::json!({ "action": g.action, "rule": g.rule })),
                Refused::OwnResource => RequestError::new(ErrorCode::GuardrailViolation, e.to_string())
                    .with_details(serde_json::json!({ "resource": g.action, "rule": g.rule })),
            },
        }
    }
}

/// A statement tree with its templated strings replaced by references to compiled templates.
#[derive(Debug, Clone)]
enum Node {
    Literal(Value),
    Render(String),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

#[derive(Debug, Clone)]
struct CompiledParam {
    name: String,
    pattern: Regex,
    allow_wildcards: bool,
}

/// A validated template, ready to render many times.
#[derive(Debug)]
pub struct CompiledTemplate {
    spec: TemplateSpec,
    env: Environment<'static>,
    statements: Vec<Node>,
    params: Vec<CompiledParam>,
}

impl CompiledTemplate {
    /// Validate a template definition and compile every templated string.
    pub fn compile(spec: TemplateSpec) -> Result<Self, TemplateInvalid> {
        if spec.description.trim().is_empty() || spec.description.len() > 1024 {
            return Err(TemplateInvalid("description must be 1 to 1024 characters".into()));
        }
        if !(MIN_TEMPLATE_TTL_SECONDS..=MAX_TEMPLATE_TTL_SECONDS).contains(&spec.max_ttl_seconds) {
            return Err(TemplateInvalid(format!(
                "max_ttl_seconds must be between {MIN_TEMPLATE_TTL_SECONDS} and {MAX_TEMPLATE_TTL_SECONDS}"
            )));
        }
        if spec.statements.is_empty() || spec.statements.len() > MAX_STATEMENTS {
            return Err(TemplateInvalid(format!("a template needs 1 to {MAX_STATEMENTS} statements")));
        }
        if let Some(rule) = &spec.approval {
            rule.check()?;
        }
        if spec.break_glass && spec.approval.is_none() {
            return Err(TemplateInvalid(
                "break_glass needs an approval rule: its approver groups review every break-glass use".into(),
            ));
        }
        let size = serde_json::to_vec(&spec).map_err(|e| TemplateInvalid(e.to_string()))?.len();
        if size > MAX_TEMPLATE_BYTES {
            return Err(TemplateInvalid(format!("the definition is {size} bytes; the limit is {MAX_TEMPLATE_BYTES}")));
        }

        let mut params = Vec::with_capacity(spec.parameters.len());
        let mut declared = BTreeSet::new();
        for p in &spec.parameters {
            if !PARAM_NAME.is_match(&p.name) {
                return Err(TemplateInvalid(format!("parameter name `{}` is not an identifier", p.name)));
            }
            if !declared.insert(p.name.clone()) {
                return Err(TemplateInvalid(format!("parameter `{}` is declared twice", p.name)));
            }
            if p.pattern.is_empty() {
                return Err(TemplateInvalid(format!("parameter `{}` needs a pattern", p.name)));
            }
            let pattern = regex::RegexBuilder::new(&format!("^(?:{})$", p.pattern))
                .size_limit(1 << 20)
                .build()
                .map_err(|e| TemplateInvalid(format!("parameter `{}` has an invalid pattern: {e}", p.name)))?;
            params.push(CompiledParam { name: p.name.clone(), pattern, allow_wildcards: p.allow_wildcards });
        }

        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Rendered strings are inserted into JSON by the serializer, which does the escaping.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_fuel(Some(RENDER_FUEL));
        env.set_recursion_limit(16);

        let mut used = BTreeSet::new();
        let mut counter = 0usize;
        let mut statements = Vec::with_capacity(spec.statements.len());
        for (index, statement) in spec.statements.iter().enumerate() {
            check_statement_shape(statement, false).map_err(|e| TemplateInvalid(format!("statement {index}: {e}")))?;
            let node = compile_node(statement, &mut env, &mut counter, &declared, &mut used)
                .map_err(|e| TemplateInvalid(format!("statement {index}: {e}")))?;
            statements.push(node);
        }
        if let Some(unused) = declared.difference(&used).next() {
            return Err(TemplateInvalid(format!("parameter `{unused}` is declared but never used")));
        }
        Ok(Self { spec, env, statements, params })
    }

    pub fn spec(&self) -> &TemplateSpec {
        &self.spec
    }

    /// Render every statement with `params`, check each, and apply the guardrails.
    pub fn render(
        &self,
        params: &BTreeMap<String, String>,
        guardrails: &Guardrails,
    ) -> Result<Vec<Value>, RenderError> {
        for name in params.keys() {
            if !self.params.iter().any(|p| &p.name == name) {
                return Err(RenderError::Param {
                    param: name.clone(),
                    reason: format!("is not declared by template `{}`", self.spec.name),
                });
            }
        }
        for p in &self.params {
            let value = params
                .get(&p.name)
                .ok_or_else(|| RenderError::Param { param: p.name.clone(), reason: "is required".into() })?;
            check_param_value(p, value)?;
        }
        let ctx = minijinja::Value::from(params.clone());
        let mut out = Vec::with_capacity(self.statements.len());
        for node in &self.statements {
            let statement = self.render_node(node, &ctx)?;
            let size = serde_json::to_vec(&statement).map_err(|e| RenderError::Statement(e.to_string()))?.len();
            if size > MAX_RENDERED_STATEMENT_BYTES {
                return Err(RenderError::Statement(format!(
                    "a rendered statement is {size} bytes; the limit is {MAX_RENDERED_STATEMENT_BYTES}"
                )));
            }
            check_statement_shape(&statement, true).map_err(RenderError::Statement)?;
            guardrails.check(&statement)?;
            out.push(statement);
        }
        Ok(out)
    }

    fn render_node(&self, node: &Node, ctx: &minijinja::Value) -> Result<Value, RenderError> {
        Ok(match node {
            Node::Literal(v) => v.clone(),
            Node::Render(name) => {
                let rendered = self
                    .env
                    .get_template(name)
                    .and_then(|t| t.render(ctx))
                    .map_err(|e| RenderError::Statement(format!("a template string failed to render: {e}")))?;
                Value::String(rendered)
            }
            Node::Object(fields) => {
                let mut map = Map::with_capacity(fields.len());
                for (k, v) in fields {
                    map.insert(k.clone(), self.render_node(v, ctx)?);
                }
                Value::Object(map)
            }
            Node::Array(items) => {
                Value::Array(items.iter().map(|i| self.render_node(i, ctx)).collect::<Result<_, _>>()?)
            }
        })
    }
}

fn check_param_value(p: &CompiledParam, value: &str) -> Result<(), RenderError> {
    let fail = |reason: String| RenderError::Param { param: p.name.clone(), reason };
    if value.chars().count() > MAX_PARAM_VALUE_CHARS {
        return Err(fail(format!("is longer than {MAX_PARAM_VALUE_CHARS} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(fail("contains a control character".into()));
    }
    if !p.allow_wildcards && value.contains(['*', '?', '$']) {
        return Err(fail("contains `*`, `?` or `$`, which would widen the statement".into()));
    }
    if !p.pattern.is_match(value) {
        return Err(fail(format!("does not match the pattern `{}`", strip_anchor(p.pattern.as_str()))));
    }
    Ok(())
}

fn strip_anchor(p: &str) -> &str {
    p.strip_prefix("^(?:").and_then(|s| s.strip_suffix(")$")).unwrap_or(p)
}

fn compile_node(
    value: &Value,
    env: &mut Environment<'static>,
    counter: &mut usize,
    declared: &BTreeSet<String>,
    used: &mut BTreeSet<String>,
) -> Result<Node, String> {
    Ok(match value {
        Value::String(s) if s.contains("{{") || s.contains("{%") || s.contains("{#") => {
            let name = format!("s{counter}");
            *counter += 1;
            env.add_template_owned(name.clone(), s.clone())
                .map_err(|e| format!("template string `{s}` does not parse: {e}"))?;
            let template = env.get_template(&name).map_err(|e| e.to_string())?;
            for var in template.undeclared_variables(false) {
                if !declared.contains(&var) {
                    return Err(format!("`{s}` uses `{var}`, which is not a declared parameter"));
                }
                used.insert(var);
            }
            Node::Render(name)
        }
        Value::Object(map) => Node::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), compile_node(v, env, counter, declared, used)?)))
                .collect::<Result<_, String>>()?,
        ),
        Value::Array(items) => {
            Node::Array(items.iter().map(|v| compile_node(v, env, counter, declared, used)).collect::<Result<_, _>>()?)
        }
        other => Node::Literal(other.clone()),
    })
}

const STATEMENT_KEYS: [&str; 7] = ["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"];

/// Check that `v` is an IAM identity-policy statement. With `rendered == false` string values may
/// still be templates: those are checked after rendering, literal ones here.
pub fn check_statement_shape(v: &Value, rendered: bool) -> Result<(), String> {
    let obj = v.as_object().ok_or("a statement must be a JSON object")?;
    if let Some(k) = obj.keys().find(|k| !STATEMENT_KEYS.contains(&k.as_str())) {
        return Err(format!("key `{k}` is not allowed in a statement (allowed: {})", STATEMENT_KEYS.join(", ")));
    }
    let templated = |s: &str| !rendered && (s.contains("{{") || s.contains("{%"));
    match obj.get("Effect") {
        Some(Value::String(e)) if templated(e) || e == "Allow" || e == "Deny" => {}
        _ => return Err("`Effect` must be \"Allow\" or \"Deny\"".into()),
    }
    let one_of = |a: &str, b: &str| -> Result<&Value, String> {
        match (obj.get(a), obj.get(b)) {
            (Some(v), None) | (None, Some(v)) => Ok(v),
            _ => Err(format!("exactly one of `{a}` or `{b}` is required")),
        }
    };
    let actions = one_of("Action", "NotAction")?;
    check_string_list(
        actions,
        "Action",
        |s| templated(s) || (s.len() <= MAX_ACTION_CHARS && ACTION.is_match(s)),
        "`service:Action` (at most 128 characters)",
    )?;
    let resources = one_of("Resource", "NotResource")?;
    check_string_list(
        resources,
        "Resource",
        |s| templated(s) || s == "*" || (s.starts_with("arn:") && s.len() <= MAX_RESOURCE_CHARS),
        "an ARN or `*`",
    )?;
    if let Some(sid) = obj.get("Sid") {
        match sid {
            Value::String(s) if templated(s) || s.chars().all(|c| c.is_ascii_alphanumeric()) => {}
            _ => return Err("`Sid` must be alphanumeric".into()),
        }
    }
    if let Some(cond) = obj.get("Condition") {
        let ops = cond.as_object().ok_or("`Condition` must be an object")?;
        for (op, keys) in ops {
            let keys = keys.as_object().ok_or_else(|| format!("condition `{op}` must map keys to values"))?;
            for (key, value) in keys {
                let ok = match value {
                    Value::String(_) | Value::Bool(_) | Value::Number(_) => true,
                    Value::Array(items) => {
                        !items.is_empty()
                            && items.iter().all(|i| matches!(i, Value::String(_) | Value::Bool(_) | Value::Number(_)))
                    }
                    _ => false,
                };
                if !ok {
                    return Err(format!("condition `{op}` key `{key}` must be a value or a list of values"));
                }
            }
        }
    }
    Ok(())
}

fn check_string_list(v: &Value, what: &str, valid: impl Fn(&str) -> bool, expect: &str) -> Result<(), String> {
    let items: Vec<&Value> = match v {
        Value::String(_) => vec![v],
        Value::Array(items) if !items.is_empty() => items.iter().collect(),
        _ => return Err(format!("`{what}` must be a string or a non-empty list of strings")),
    };
    for item in items {
        match item {
            Value::String(s) if valid(s) => {}
            Value::String(s) => return Err(format!("`{what}` value `{s}` is not {expect}")),
            _ => return Err(format!("`{what}` must hold strings only")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn bucket_read() -> TemplateSpec {
        serde_json::from_value(json!({
            "name": "bucketRead",
            "description": "Read objects in one bucket",
            "parameters": [{"name": "bucketName", "description": "bucket", "pattern": ".+"}],
            "statements": [{
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": "arn:aws:s3:::{{ bucketName }}/*"
            }],
            "max_ttl_seconds": 3600
        }))
        .unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Templates whose strings use only `{{ name }}` placeholders, so a render must be plain textual
    /// substitution of the values: the oracle below.
    fn property_templates() -> Vec<TemplateSpec> {
        let spec = |name: &str, parameters: Value, statements: Value| -> TemplateSpec {
            serde_json::from_value(json!({"name": name, "description": "d", "parameters": parameters,
                                          "statements": statements, "max_ttl_seconds": 3600}))
            .unwrap()
        };
        vec![
            spec(
                "prefixRead",
                json!([{"name": "bucket", "description": "d", "pattern": "[a-z0-9.-]{3,63}"},
                       {"name": "prefix", "description": "d", "pattern": "(?s).*"}]),
                json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                        "Resource": ["arn:aws:s3:::{{ bucket }}", "arn:aws:s3:::{{ bucket }}/{{ prefix }}*"],
                        "Condition": {"StringLike": {"s3:prefix": ["{{ prefix }}*"]}}}]),
            ),
            spec(
                "verbFromParam",
                json!([{"name": "verb", "description": "d", "pattern": "Get[A-Za-z]*"},
                       {"name": "bucket", "description": "d", "pattern": "(?s).*", "allow_wildcards": true}]),
                json!([{"Effect": "Allow", "Action": "s3:{{ verb }}", "Resource": "arn:aws:s3:::{{ bucket }}/*"},
                       {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::{{ bucket }}/{{ bucket }}"}]),
            ),
            spec(
                "everythingTemplated",
                json!([{"name": "effect", "description": "d", "pattern": "(?s).*"},
                       {"name": "sid", "description": "d", "pattern": "(?s).*"},
                       {"name": "arn", "description": "d", "pattern": "(?s).*"}]),
                json!([{"Sid": "{{ sid }}", "Effect": "{{ effect }}", "Action": "sqs:SendMessage",
                        "Resource": "{{ arn }}"}]),
            ),
        ]
    }

    /// `text` with every `{{ name }}` replaced by its value, in one pass (a value holding `{{ x }}`
    /// stays as it is).
    fn substitute(text: &str, params: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{ ") {
            let end = start + rest[start..].find(" }}").expect("a closed placeholder");
            out.push_str(&rest[..start]);
            out.push_str(&params[&rest[start + 3..end]]);
            rest = &rest[end + 3..];
        }
        out.push_str(rest);
        out
    }

    fn substitute_all(v: &Value, params: &BTreeMap<String, String>) -> Value {
        match v {
            Value::String(s) => Value::String(substitute(s, params)),
            Value::Array(items) => Value::Array(items.iter().map(|i| substitute_all(i, params)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), substitute_all(v, params))).collect())
            }
            other => other.clone(),
        }
    }

    /// The template's rules for values, restated: declared, present, short, printable, no IAM
    /// wildcard unless allowed, and matching the whole pattern.
    fn values_are_acceptable(spec: &TemplateSpec, params: &BTreeMap<String, String>) -> bool {
        params.keys().all(|k| spec.parameters.iter().any(|p| &p.name == k))
            && spec.parameters.iter().all(|p| {
                params.get(&p.name).is_some_and(|v| {
                    v.chars().count() <= MAX_PARAM_VALUE_CHARS
                        && !v.chars().any(char::is_control)
                        && (p.allow_wildcards || !v.contains(['*', '?', '$']))
                        && Regex::new(&format!("^(?:{})$", p.pattern)).unwrap().is_match(v)
                })
            })
    }

    /// Pieces of values that try to break out: JSON and Jinja metacharacters, IAM wildcards,
    /// separators, other scripts (all printable; newlines come from `hostile_value`).
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            Just("{{".to_owned()),
            Just("}}".to_owned()),
            Just("{%".to_owned()),
            Just("%}".to_owned()),
            Just("{{ bucket }}".to_owned()),
            Just("*".to_owned()),
            Just("?".to_owned()),
            Just("$".to_owned()),
            Just(",".to_owned()),
            Just("]".to_owned()),
            Just("[".to_owned()),
            Just("\u{2028}".to_owned()),
            Just("é山🦀".to_owned()),
            Just("Allow".to_owned()),
            Just("Deny".to_owned()),
            Just("arn:aws:s3:::".to_owned()),
            Just("\", \"Action\": \"iam:*".to_owned()),
            Just("/".to_owned()),
            "[a-z0-9.-]{1,8}",
        ]
    }

    fn hostile_value() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::collection::vec(fragment(), 0..10).prop_map(|f| f.concat()),
            1 => prop::collection::vec(prop_oneof![fragment(), Just("\n".to_owned())], 0..10).prop_map(|f| f.concat()),
            1 => any::<String>(),
            1 => "[a-z]{300}",
        ]
    }

    /// A value for the parameter `name` of [`property_templates`]: half the time one its template
    /// can render (hostile text where the pattern lets it through), else anything.
    fn value_for(name: &str) -> BoxedStrategy<String> {
        let hostile_text = prop::collection::vec(fragment(), 0..10).prop_map(|f| f.concat());
        let plausible = match name {
            "bucket" => prop_oneof!["[a-z0-9.-]{3,12}", hostile_text].boxed(),
            "verb" => {
                prop_oneof![Just("GetObject".to_owned()), Just("GetObjectVersion".to_owned()), "Get[A-Za-z]{0,9}"]
                    .boxed()
            }
            "effect" => prop_oneof![Just("Allow".to_owned()), Just("Deny".to_owned())].boxed(),
            "sid" => "[A-Za-z0-9]{1,12}".boxed(),
            "arn" => hostile_text.prop_map(|t| format!("arn:aws:sqs:eu-west-1:123456789012:{t}")).boxed(),
            _ => hostile_text.boxed(),
        };
        prop_oneof![3 => plausible, 1 => hostile_value()].boxed()
    }

    fn template_and_params() -> impl Strategy<Value = (TemplateSpec, BTreeMap<String, String>)> {
        (0..property_templates().len()).prop_flat_map(|i| {
            let spec = property_templates().swap_remove(i);
            let values: Vec<BoxedStrategy<(String, String)>> = spec
                .parameters
                .iter()
                .map(|p| {
                    let name = p.name.clone();
                    value_for(&name).prop_map(move |v| (name.clone(), v)).boxed()
                })
                .collect();
            (Just(spec), values, prop::option::weighted(0.05, "[a-z]{1,6}"), any::<bool>()).prop_map(
                |(spec, values, extra, drop_one)| {
                    let mut params: BTreeMap<String, String> = values.into_iter().collect();
                    if let Some(extra) = extra {
                        params.insert(extra, "x".into());
                        if drop_one {
                            params.pop_first();
                        }
                    }
                    (spec, params)
                },
            )
        })
    }

    proptest! {
        #![proptest_config(crate::properties::config(512))]

        /// Whatever the values: a render that succeeds is exactly the template with the values
        /// substituted as text (so every action and resource is one the template declared, with
        /// parameter text only where it has a placeholder, no element added and no wildcard a
        /// pattern forbids), it round-trips through JSON, and every value kept the template's rules;
        /// a render that fails is a coded refusal, `param_invalid` exactly when a value broke them.
        #[test]
        fn renders_are_the_template_with_values_as_text((spec, params) in template_and_params()) {
            let acceptable = values_are_acceptable(&spec, &params);
            let template = CompiledTemplate::compile(spec.clone()).expect("the template compiles");
            match template.render(&params, &Guardrails::default()) {
                Ok(out) => {
                    prop_assert!(acceptable, "rendered with unacceptable values {:?}", params);
                    let expected: Vec<Value> = spec.statements.iter().map(|s| substitute_all(s, &params)).collect();
                    prop_assert_eq!(&out, &expected);
                    let text = serde_json::to_string(&out).expect("serializes");
                    prop_assert_eq!(serde_json::from_str::<Vec<Value>>(&text).expect("parses"), out.clone());
                    for (p, value) in spec.parameters.iter().map(|p| (p, &params[&p.name])) {
                        prop_assert!(p.allow_wildcards || !value.contains(['*', '?', '$']));
                    }
                }
                Err(err) => {
                    let param_error = matches!(err, RenderError::Param { .. });
                    prop_assert_eq!(param_error, !acceptable, "{}", err);
                    let code = RequestError::from(err).code;
                    prop_assert!(
                        matches!(code, ErrorCode::ParamInvalid | ErrorCode::TemplateInvalid
                            | ErrorCode::GuardrailViolation | ErrorCode::ActionUnknown),
                        "{:?}", code
                    );
                }
            }
        }

        /// Template strings built from Jinja syntax: compiling never panics, and a template that
        /// compiles renders any value to one statement of the same keys, or refuses with a code.
        #[test]
        fn arbitrary_template_strings_compile_or_are_refused(
            fragments in prop::collection::vec(prop_oneof![
                Just("{{"), Just("}}"), Just("{%"), Just("%}"), Just("{#"), Just("#}"), Just(" a "), Just("|upper"),
                Just("|safe"), Just(" if "), Just(" for x in "), Just("range(9999)"), Just("endfor"), Just("endif"),
                Just("~"), Just("\""), Just("\\"), Just("arn:aws:s3:::"), Just("*"), Just("loop"), Just(" else "),
            ], 0..12),
            value in value_for("a"),
        ) {
            let mut spec = bucket_read();
            spec.parameters[0].name = "a".into();
            spec.parameters[0].pattern = "(?s).*".into();
            spec.statements[0]["Resource"] = json!(format!("arn:aws:s3:::{{{{ a }}}}/{}", fragments.concat()));
            let Ok(template) = CompiledTemplate::compile(spec) else { return Ok(()) };
            match template.render(&params(&[("a", &value)]), &Guardrails::default()) {
                Ok(out) => {
                    prop_assert_eq!(out.len(), 1);
                    // Sorted: serde_json keeps insertion order when `preserve_order` is unified in.
                    let mut keys: Vec<&String> = out[0].as_object().expect("an object").keys().collect();
                    keys.sort();
                    prop_assert_eq!(keys, vec!["Action", "Effect", "Resource"]);
                    prop_assert!(out[0]["Resource"].as_str().is_some_and(|r| r.starts_with("arn:aws:s3:::")));
                }
                Err(err) => {
                    let code = RequestError::from(err).code;
                    prop_assert!(matches!(code, ErrorCode::ParamInvalid | ErrorCode::TemplateInvalid), "{:?}", code);
                }
            }
        }
    }

    #[test]
    fn renders_bucket_read() {
        let t = CompiledTemplate::compile(bucket_read()).unwrap();
        let out = t.render(&params(&[("bucketName", "reports")]), &Guardrails::default()).unwrap();
        assert_eq!(
            out,
            vec![json!({
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": "arn:aws:s3:::reports/*"
            })]
        );
    }

    #[test]
    fn hostile_values_cannot_change_structure() {
        // A permissive pattern on purpose: escaping alone must keep the structure.
        let mut spec = bucket_read();
        spec.parameters[0].pattern = "(?s).*".into();
        spec.parameters[0].allow_wildcards = true;
        let t = CompiledTemplate::compile(spec).unwrap();
        let g = Guardrails::default();
        for hostile in [
            r#"x", "Action": "iam:*"#,
            r#"x"}, {"Effect": "Allow", "Action": "*", "Resource": "*"#,
            r"back\slash\",
            "{{ 7 * 7 }}",
            "{% raw %}",
            "quote\"brace}{",
        ] {
            let out = t.render(&params(&[("bucketName", hostile)]), &g).unwrap();
            assert_eq!(out.len(), 1, "one statement for {hostile:?}");
            let obj = out[0].as_object().unwrap();
            assert_eq!(obj.len(), 3);
            assert_eq!(obj["Action"], json!(["s3:GetObject", "s3:GetObjectVersion"]));
            assert_eq!(obj["Resource"], json!(format!("arn:aws:s3:::{hostile}/*")));
            // Round-trips through JSON text unchanged.
            let text = serde_json::to_string(&out[0]).unwrap();
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), out[0]);
        }
        // Without `allow_wildcards`, wildcards and control characters are refused outright.
        let mut strict = bucket_read();
        strict.parameters[0].pattern = "(?s).*".into();
        let t = CompiledTemplate::compile(strict).unwrap();
        for refused in ["*", "a?c", "${aws:username}", "line\nbreak", "tab\t"] {
            let err = t.render(&params(&[("bucketName", refused)]), &g).unwrap_err();
            assert!(matches!(err, RenderError::Param { ref param, .. } if param == "bucketName"), "{refused:?}: {err}");
        }
    }

    #[test]
    fn pattern_is_anchored() {
        let mut spec = bucket_read();
        spec.parameters[0].pattern = "[a-z]+".into();
        let t = CompiledTemplate::compile(spec).unwrap();
        let err = t.render(&params(&[("bucketName", "abc/../other")]), &Guardrails::default()).unwrap_err();
        let req: RequestError = err.into();
        assert_eq!(req.code, ErrorCode::ParamInvalid);
        assert!(req.message.contains("bucketName"), "{}", req.message);
    }

    #[test]
    fn missing_and_undeclared_params_are_refused() {
        let t = CompiledTemplate::compile(bucket_read()).unwrap();
        let g = Guardrails::default();
        let missing = t.render(&params(&[]), &g).unwrap_err();
        assert_eq!(missing, RenderError::Param { param: "bucketName".into(), reason: "is required".into() });
        let extra = t.render(&params(&[("bucketName", "a1"), ("region", "x")]), &g).unwrap_err();
        assert!(matches!(extra, RenderError::Param { ref param, .. } if param == "region"));
    }

    #[test]
    fn templates_may_only_use_declared_parameters() {
        let mut spec = bucket_read();
        spec.statements[0]["Resource"] = json!("arn:aws:s3:::{{ bucketName }}/{{ secretPath }}");
        let err = CompiledTemplate::compile(spec).unwrap_err();
        assert!(err.0.contains("secretPath"), "{err}");

        let mut unused = bucket_read();
        unused.parameters.push(ParameterSpec {
            name: "other".into(),
            description: "d".into(),
            pattern: ".+".into(),
            allow_wildcards: false,
        });
        assert!(CompiledTemplate::compile(unused).unwrap_err().0.contains("other"));
    }

    #[test]
    fn statement_shape_is_checked_at_put_time() {
        let mut spec = bucket_read();
        spec.statements[0]["Principal"] = json!("*");
        assert!(CompiledTemplate::compile(spec).unwrap_err().0.contains("Principal"));

        let mut both = bucket_read();
        both.statements[0]["NotAction"] = json!("s3:PutObject");
        assert!(CompiledTemplate::compile(both).unwrap_err().0.contains("exactly one of `Action`"));

        // Literal values are checked at put time too; templated ones after rendering.
        for (key, value, complaint) in [
            ("Effect", json!("Permit"), "Effect"),
            ("Action", json!(["s3:GetObject", "not an action"]), "not an action"),
            ("Resource", json!("s3://bucket/key"), "s3://bucket/key"),
            ("Sid", json!("has spaces"), "Sid"),
        ] {
            let mut literal = bucket_read();
            literal.statements[0][key] = value;
            let err = CompiledTemplate::compile(literal).unwrap_err().0;
            assert!(err.contains(complaint), "{key}: {err}");
        }
        let mut templated = bucket_read();
        templated.statements[0]["Sid"] = json!("{{ bucketName }}");
        assert!(CompiledTemplate::compile(templated).is_ok());

        let mut syntax = bucket_read();
        syntax.statements[0]["Resource"] = json!("arn:aws:s3:::{{ bucketName");
        assert!(CompiledTemplate::compile(syntax).unwrap_err().0.contains("does not parse"));
    }

    #[test]
    fn guardrail_error_names_the_action() {
        let mut spec = bucket_read();
        spec.statements[0]["Action"] = json!(["s3:GetObject", "iam:PassRole"]);
        let t = CompiledTemplate::compile(spec).unwrap();
        let err: RequestError = t.render(&params(&[("bucketName", "b1")]), &Guardrails::default()).unwrap_err().into();
        assert_eq!(err.code, ErrorCode::GuardrailViolation);
        assert!(err.message.contains("iam:PassRole"), "{}", err.message);
    }

    /// The attack that aborted workers: an action of hundreds of thousands of characters, put literally
    /// or rendered from a repeated parameter, checked on a thread with a small stack.
    #[test]
    fn huge_actions_are_refused_without_recursion() {
        std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| {
                let mut literal = bucket_read();
                literal.statements[0]["Action"] = json!(format!("s3:{}", "Get*".repeat(75_000)));
                let err = CompiledTemplate::compile(literal).unwrap_err();
                assert!(err.0.contains("at most 128") || err.0.contains("bytes"), "{err}");
                let repeated: TemplateSpec = serde_json::from_value(json!({
                    "name": "repeat",
                    "description": "d",
                    "parameters": [{"name": "a", "description": "d", "pattern": "[A-Za-z*]{1,256}", "allow_wildcards": true}],
                    "statements": [{"Effect": "Allow", "Action": format!("s3:{}", "{{ a }}".repeat(1000)), "Resource": "*"}],
                    "max_ttl_seconds": 3600
                }))
                .unwrap();
                let t = CompiledTemplate::compile(repeated).unwrap();
                let err = t.render(&params(&[("a", &"Get*".repeat(64))]), &Guardrails::default()).unwrap_err();
                assert!(matches!(err, RenderError::Statement(_)), "{err}");
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn rendered_values_must_make_a_valid_statement() {
        let spec: TemplateSpec = serde_json::from_value(json!({
            "name": "anyAction",
            "description": "d",
            "parameters": [{"name": "a", "description": "d", "pattern": "[A-Za-z0-9:]+"}],
            "statements": [{"Effect": "Allow", "Action": "{{ a }}", "Resource": "*"}],
            "max_ttl_seconds": 3600
        }))
        .unwrap();
        let t = CompiledTemplate::compile(spec).unwrap();
        let err = t.render(&params(&[("a", "notanaction")]), &Guardrails::default()).unwrap_err();
        assert!(matches!(err, RenderError::Statement(_)), "{err}");
        assert!(t.render(&params(&[("a", "s3:ListBucket")]), &Guardrails::default()).is_ok());
    }
}
