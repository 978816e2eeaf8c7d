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
/// Fuel given to one statement-string render; bounds the work a hostile template can cause.
const RENDER_FUEL: u64 = 10_000;

static TEMPLATE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$").expect("static regex"));
static PARAM_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$").expect("static regex"));
static ACCOUNT_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[0-9]{12}$").expect("static regex"));
static ACTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\*|[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+)$").expect("static regex"));

/// Whether `name` is a valid template name (a letter, then up to 63 letters, digits, `_` or `-`).
pub fn is_template_name(name: &str) -> bool {
    TEMPLATE_NAME.is_match(name)
}

/// Whether `account` is a 12-digit AWS account id.
pub fn is_account_id(account: &str) -> bool {
    ACCOUNT_ID.is_match(account)
}

/// A template as written by its author (the body of `template.put`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// Unique name: a letter, then up to 63 letters, digits, `_` or `-`.
    pub name: String,
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
    pub allowed_accounts: Option<Vec<String>>,
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
            RenderError::Guardrail(g) => RequestError::new(
                ErrorCode::GuardrailViolation,
                format!("{e}; this access cannot be granted through Portcullis"),
            )
            .with_details(serde_json::json!({ "action": g.action, "rule": g.rule })),
        }
    }
}

/// A rendered statement broke a guardrail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("action `{action}` is denied by guardrail `{rule}`")]
pub struct GuardrailViolation {
    pub action: String,
    pub rule: String,
}

/// Actions no template may ever allow, whatever its author wrote.
///
/// Each rule is either the bare `*` (refuses an Allow of the literal action `*`) or `service:glob`
/// (refuses any allowed action of that service whose name pattern could match the glob, so
/// `iam:Pass*` is refused by `iam:*` and `iam:*Role` by `iam:PassRole`). Actions with a wildcard in
/// the service prefix and Allow statements using `NotAction` are always refused: they cannot be
/// reasoned about.
#[derive(Debug, Clone)]
pub struct Guardrails {
    rules: Vec<(String, GuardrailRule)>,
}

#[derive(Debug, Clone)]
enum GuardrailRule {
    Bare,
    Service { service: String, name: String },
}

impl Guardrails {
    /// Default denied actions.
    pub const DEFAULT_DENIED: [&'static str; 5] = ["*", "iam:*", "sts:*", "organizations:*", "account:*"];

    pub fn new<S: AsRef<str>>(denied_actions: &[S]) -> Result<Self, TemplateInvalid> {
        let mut rules = Vec::new();
        for raw in denied_actions {
            let raw = raw.as_ref();
            let rule = if raw == "*" {
                GuardrailRule::Bare
            } else if let Some((service, name)) = raw.split_once(':') {
                if service.is_empty() || name.is_empty() || service.contains(['*', '?']) {
                    return Err(TemplateInvalid(format!("guardrail `{raw}` must look like `service:Action*`")));
                }
                GuardrailRule::Service { service: service.to_ascii_lowercase(), name: name.to_ascii_lowercase() }
            } else {
                return Err(TemplateInvalid(format!("guardrail `{raw}` must be `*` or `service:Action*`")));
            };
            rules.push((raw.to_owned(), rule));
        }
        Ok(Self { rules })
    }

    /// Check one rendered statement. Deny statements only narrow access and always pass.
    pub fn check(&self, statement: &Value) -> Result<(), GuardrailViolation> {
        self.check_actions(statement, |_| true)
    }

    /// Check a statement as written in a template, before rendering: literal actions must already
    /// pass (templated ones are checked at render time), and a templated `Effect` counts as Allow.
    /// Lets `template.put` refuse a template that could never be granted.
    pub fn check_literals(&self, statement: &Value) -> Result<(), GuardrailViolation> {
        self.check_actions(statement, |action| !(action.contains("{{") || action.contains("{%")))
    }

    fn check_actions(&self, statement: &Value, checkable: impl Fn(&str) -> bool) -> Result<(), GuardrailViolation> {
        if statement.get("Effect").and_then(Value::as_str) == Some("Deny") {
            return Ok(());
        }
        if statement.get("NotAction").is_some() {
            return Err(GuardrailViolation {
                action: "NotAction".into(),
                rule: "Allow with NotAction grants every other action".into(),
            });
        }
        if statement.get("NotResource").is_some() {
            return Err(GuardrailViolation {
                action: "NotResource".into(),
                rule: "Allow with NotResource grants every other resource".into(),
            });
        }
        for action in string_or_list(statement.get("Action")).into_iter().filter(|a| checkable(a)) {
            self.check_action(action)?;
        }
        Ok(())
    }

    fn check_action(&self, action: &str) -> Result<(), GuardrailViolation> {
        let lower = action.to_ascii_lowercase();
        let (service, name) = lower.split_once(':').unwrap_or(("*", "*"));
        if lower != "*" && service.contains(['*', '?']) {
            return Err(GuardrailViolation {
                action: action.to_owned(),
                rule: "no wildcard in the service prefix".into(),
            });
        }
        for (raw, rule) in &self.rules {
            let hit = match rule {
                GuardrailRule::Bare => lower == "*",
                GuardrailRule::Service { service: s, name: n } => {
                    lower == "*" || (s == service && globs_intersect(n.as_bytes(), name.as_bytes()))
                }
            };
            if hit {
                return Err(GuardrailViolation { action: action.to_owned(), rule: raw.clone() });
            }
        }
        Ok(())
    }
}

impl Default for Guardrails {
    fn default() -> Self {
        Self::new(&Self::DEFAULT_DENIED).expect("default guardrails are valid")
    }
}

/// Whether two IAM globs (`*` any run, `?` one character) can match a common string.
fn globs_intersect(p: &[u8], q: &[u8]) -> bool {
    let (n, m) = (p.len(), q.len());
    // memo[i][j]: Some(result) once computed.
    let mut memo = vec![None; (n + 1) * (m + 1)];
    fn go(p: &[u8], q: &[u8], i: usize, j: usize, memo: &mut [Option<bool>]) -> bool {
        let idx = i * (q.len() + 1) + j;
        if let Some(v) = memo[idx] {
            return v;
        }
        let v = if i == p.len() && j == q.len() {
            true
        } else if i < p.len() && p[i] == b'*' {
            go(p, q, i + 1, j, memo) || (j < q.len() && go(p, q, i, j + 1, memo))
        } else if j < q.len() && q[j] == b'*' {
            go(p, q, i, j + 1, memo) || (i < p.len() && go(p, q, i + 1, j, memo))
        } else if i < p.len() && j < q.len() {
            (p[i] == b'?' || q[j] == b'?' || p[i] == q[j]) && go(p, q, i + 1, j + 1, memo)
        } else {
            false
        };
        memo[idx] = Some(v);
        v
    }
    go(p, q, 0, 0, &mut memo)
}

fn string_or_list(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
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
        if !TEMPLATE_NAME.is_match(&spec.name) {
            return Err(TemplateInvalid(format!(
                "name `{}` must be a letter followed by up to 63 letters, digits, `_` or `-`",
                spec.name
            )));
        }
        if spec.description.trim().is_empty() || spec.description.len() > 1024 {
            return Err(TemplateInvalid("description must be 1 to 1024 characters".into()));
        }
        if !(MIN_TEMPLATE_TTL_SECONDS..=MAX_TEMPLATE_TTL_SECONDS).contains(&spec.max_ttl_seconds) {
            return Err(TemplateInvalid(format!(
                "max_ttl_seconds must be between {MIN_TEMPLATE_TTL_SECONDS} and {MAX_TEMPLATE_TTL_SECONDS}"
            )));
        }
        if let Some(accounts) = &spec.allowed_accounts
            && let Some(bad) = accounts.iter().find(|a| !ACCOUNT_ID.is_match(a))
        {
            return Err(TemplateInvalid(format!("allowed_accounts entry `{bad}` is not a 12-digit account id")));
        }
        if spec.statements.is_empty() || spec.statements.len() > MAX_STATEMENTS {
            return Err(TemplateInvalid(format!("a template needs 1 to {MAX_STATEMENTS} statements")));
        }
        let size = serde_json::to_vec(&spec).map(|v| v.len()).unwrap_or(usize::MAX);
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
    check_string_list(actions, "Action", |s| templated(s) || ACTION.is_match(s), "`service:Action`")?;
    let resources = one_of("Resource", "NotResource")?;
    check_string_list(
        resources,
        "Resource",
        |s| templated(s) || s == "*" || (s.starts_with("arn:") && s.len() <= 2048),
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
    fn guardrails_refuse_dangerous_actions() {
        let g = Guardrails::default();
        let stmt = |action: Value| json!({"Effect": "Allow", "Action": action, "Resource": "*"});
        for (action, rule) in [
            (json!("iam:PassRole"), "iam:*"),
            (json!(["s3:GetObject", "IAM:CreateUser"]), "iam:*"),
            (json!("sts:AssumeRole"), "sts:*"),
            (json!("*"), "*"),
            (json!("organizations:Leave*"), "organizations:*"),
        ] {
            let err = g.check(&stmt(action.clone())).unwrap_err();
            assert_eq!(err.rule, rule, "{action}");
        }
        let wildcard_service = g.check(&stmt(json!("i*:List*"))).unwrap_err();
        assert_eq!(wildcard_service.rule, "no wildcard in the service prefix");
        assert!(g.check(&json!({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"})).is_err());
        let not_resource =
            g.check(&json!({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::x/*"}));
        assert_eq!(not_resource.unwrap_err().action, "NotResource");
        assert!(g.check(&json!({"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::x/*"})).is_ok());
        assert!(g.check(&stmt(json!("s3:*"))).is_ok());
        assert!(g.check(&json!({"Effect": "Deny", "Action": "iam:*", "Resource": "*"})).is_ok());

        let narrow = Guardrails::new(&["iam:PassRole"]).unwrap();
        assert!(narrow.check(&stmt(json!("iam:Pass*"))).is_err());
        assert!(narrow.check(&stmt(json!("iam:*Role"))).is_err());
        assert!(narrow.check(&stmt(json!("iam:GetRole"))).is_ok());
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

    #[test]
    fn glob_intersection() {
        assert!(globs_intersect(b"*", b"passrole"));
        assert!(globs_intersect(b"pass*", b"*role"));
        assert!(globs_intersect(b"get?bject", b"getobject"));
        assert!(!globs_intersect(b"get*", b"put*"));
        assert!(!globs_intersect(b"passrole", b"getrole"));
        assert!(globs_intersect(b"a*c", b"ab*"));
    }
}
