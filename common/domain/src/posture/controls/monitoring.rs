//! The CIS monitoring family (CIS 4.1–4.15): for each class of CloudTrail event, a chain from a
//! healthy multi-region trail to its CloudWatch Logs group, a metric filter whose pattern **covers**
//! the benchmark's pattern, an alarm on the filter's metric, and an SNS topic with a confirmed
//! subscriber.
//!
//! Coverage is decided on parsed patterns, never by comparing strings: a filter covers the
//! benchmark when every event the benchmark's pattern matches is matched by the filter too. The
//! benchmark's pattern is put in disjunctive normal form (each conjunction one kind of event), and
//! the filter is evaluated over each conjunction in three-valued logic: a comparison the conjunction
//! decides is true or false, any other is unknown. Only a filter that is *true* for every
//! conjunction covers; unknown counts as not covered (a filter that might miss events is not
//! enough). So `{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ... }` written in
//! another order, with other spacing or quoting, or with extra alternatives, covers 4.5; one that
//! drops `StopLogging` does not, and the result names the missing event.

use std::collections::BTreeSet;
use std::fmt;

use super::{ControlId, ControlResult, TrailFacts, Unreadable};

// ------------------------------------------------------------------ filter patterns

/// A comparison operator of a JSON filter pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `IS TRUE`, `IS FALSE`, `IS NULL` (the value says which).
    Is,
    /// `NOT EXISTS`.
    NotExists,
    /// `EXISTS`.
    Exists,
}

/// One comparison: `$.eventName = "StopLogging"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FilterComparison {
    /// The selector without `$.` (`eventName`, `userIdentity.type`).
    pub field: String,
    pub op: FilterOp,
    /// The value, unquoted (`*` is a wildcard in `=` and `!=`).
    pub value: String,
}

/// A parsed JSON metric filter pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterPattern {
    Cmp(FilterComparison),
    And(Vec<FilterPattern>),
    Or(Vec<FilterPattern>),
}

/// Why a filter pattern could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter pattern not understood at byte {at}: {what}")]
pub struct FilterPatternError {
    pub at: usize,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Op(&'static str),
    Word(String),
    Quoted(String),
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, FilterPatternError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, what: &str| FilterPatternError { at, what: what.to_owned() };
    while i < bytes.len() {
        let c = bytes[i];
        let rest = &text[i..];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'(' {
            out.push((i, Token::Open));
            i += 1;
        } else if c == b')' {
            out.push((i, Token::Close));
            i += 1;
        } else if rest.starts_with("&&") {
            out.push((i, Token::And));
            i += 2;
        } else if rest.starts_with("||") {
            out.push((i, Token::Or));
            i += 2;
        } else if let Some(op) = ["!=", "<=", ">=", "=", "<", ">"].into_iter().find(|op| rest.starts_with(op)) {
            out.push((i, Token::Op(op)));
            i += op.len();
        } else if c == b'"' {
            let mut value = String::new();
            let mut j = i + 1;
            loop {
                match bytes.get(j) {
                    None => return Err(err(i, "a quoted value is not closed")),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        let next = text[j + 1..].chars().next().ok_or_else(|| err(j, "a dangling backslash"))?;
                        value.push(next);
                        j += 1 + next.len_utf8();
                    }
                    Some(_) => {
                        let ch = text[j..].chars().next().ok_or_else(|| err(j, "not UTF-8"))?;
                        value.push(ch);
                        j += ch.len_utf8();
                    }
                }
            }
            out.push((i, Token::Quoted(value)));
            i = j + 1;
        } else {
            let end = rest
                .char_indices()
                .find(|(_, ch)| ch.is_whitespace() || matches!(ch, '(' | ')' | '=' | '!' | '<' | '>' | '&' | '|' | '"'))
                .map(|(k, _)| k)
                .unwrap_or(rest.len());
            if end == 0 {
                return Err(err(i, &format!("unexpected `{}`", &rest[..rest.len().min(8)])));
            }
            out.push((i, Token::Word(rest[..end].to_owned())));
            i += end;
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map(|(at, _)| *at).unwrap_or(self.end)
    }

    fn err(&self, what: impl Into<String>) -> FilterPatternError {
        FilterPatternError { at: self.at(), what: what.into() }
    }

    fn advance(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }

    /// `&&` binds tighter than `||`.
    fn or(&mut self) -> Result<FilterPattern, FilterPatternError> {
        let mut items = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { FilterPattern::Or(items) })
    }

    fn and(&mut self) -> Result<FilterPattern, FilterPatternError> {
        let mut items = vec![self.unary()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { FilterPattern::And(items) })
    }

    fn unary(&mut self) -> Result<FilterPattern, FilterPatternError> {
        if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let inner = self.or()?;
            if self.advance() != Some(Token::Close) {
                return Err(self.err("a `(` is not closed"));
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<FilterPattern, FilterPatternError> {
        let field = match self.advance() {
            Some(Token::Word(w)) if w == "$" || w.starts_with("$.") || w.starts_with("$[") => {
                w.trim_start_matches('$').trim_start_matches('.').to_owned()
            }
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err(self.err("expected a selector such as `$.eventName`"));
            }
        };
        let keyword = |t: &Option<Token>, k: &str| matches!(t, Some(Token::Word(w)) if w.eq_ignore_ascii_case(k));
        let token = self.advance();
        let (op, value) = match token {
            Some(Token::Op(op)) => {
                let op = match op {
                    "=" => FilterOp::Eq,
                    "!=" => FilterOp::Ne,
                    "<" => FilterOp::Lt,
                    "<=" => FilterOp::Le,
                    ">" => FilterOp::Gt,
                    _ => FilterOp::Ge,
                };
                let value = match self.advance() {
                    Some(Token::Word(w)) => w,
                    Some(Token::Quoted(q)) => q,
                    _ => {
                        self.pos = self.pos.saturating_sub(1);
                        return Err(self.err("expected a value"));
                    }
                };
                (op, value)
            }
            ref t if keyword(t, "IS") => match self.advance() {
                Some(Token::Word(w)) if ["TRUE", "FALSE", "NULL"].iter().any(|k| w.eq_ignore_ascii_case(k)) => {
                    (FilterOp::Is, w.to_ascii_uppercase())
                }
                _ => return Err(self.err("expected TRUE, FALSE or NULL after IS")),
            },
            ref t if keyword(t, "NOT") => match self.advance() {
                ref e if keyword(e, "EXISTS") => (FilterOp::NotExists, String::new()),
                _ => return Err(self.err("expected EXISTS after NOT")),
            },
            ref t if keyword(t, "EXISTS") => (FilterOp::Exists, String::new()),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err(self.err("expected an operator"));
            }
        };
        Ok(FilterPattern::Cmp(FilterComparison { field, op, value }))
    }
}

impl FilterPattern {
    /// Parse a JSON filter pattern (`{ ... }`). Space-delimited and unstructured patterns are not
    /// JSON patterns: they are an error here (they cannot select CloudTrail fields).
    pub fn parse(text: &str) -> Result<FilterPattern, FilterPatternError> {
        let trimmed = text.trim();
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| FilterPatternError { at: 0, what: "not a JSON filter pattern (`{ ... }`)".into() })?;
        let offset = text.len() - text.trim_start().len() + 1;
        let tokens = tokenize(inner).map_err(|e| FilterPatternError { at: e.at + offset, ..e })?;
        let mut parser = Parser { tokens, pos: 0, end: inner.len() };
        let pattern = parser.or().map_err(|e| FilterPatternError { at: e.at + offset, ..e })?;
        if parser.pos < parser.tokens.len() {
            return Err(FilterPatternError {
                at: parser.at() + offset,
                what: "unexpected text after the pattern".into(),
            });
        }
        Ok(pattern)
    }

    /// Disjunctive normal form: each inner list is one conjunction of comparisons.
    fn dnf(&self) -> Vec<Vec<FilterComparison>> {
        match self {
            FilterPattern::Cmp(c) => vec![vec![c.clone()]],
            FilterPattern::Or(items) => items.iter().flat_map(FilterPattern::dnf).collect(),
            FilterPattern::And(items) => items.iter().fold(vec![Vec::new()], |acc, item| {
                let right = item.dnf();
                acc.iter()
                    .flat_map(|l| {
                        right.iter().map(move |r| {
                            let mut both = l.clone();
                            both.extend(r.iter().cloned());
                            both
                        })
                    })
                    .collect()
            }),
        }
    }

    /// Three-valued evaluation over the events a conjunction describes.
    fn eval(&self, known: &[FilterComparison]) -> Truth {
        match self {
            FilterPattern::Cmp(c) => implied(known, c),
            FilterPattern::And(items) => items.iter().fold(Truth::True, |acc, i| acc.and(i.eval(known))),
            FilterPattern::Or(items) => items.iter().fold(Truth::False, |acc, i| acc.or(i.eval(known))),
        }
    }

    /// Whether every event `benchmark` matches is matched by this pattern. Returns the benchmark's
    /// conjunctions (as text) this pattern does not cover.
    pub fn uncovered(&self, benchmark: &FilterPattern) -> Vec<String> {
        benchmark
            .dnf()
            .into_iter()
            .filter(|conj| self.eval(conj) != Truth::True)
            .map(|conj| conj.iter().map(FilterComparison::to_string).collect::<Vec<_>>().join(" && "))
            .collect()
    }

    /// How many kinds of event (conjunctions of its disjunctive normal form) it matches.
    pub fn conjunctions(&self) -> usize {
        self.dnf().len()
    }

    /// Whether this pattern covers `benchmark`.
    pub fn covers(&self, benchmark: &FilterPattern) -> bool {
        self.uncovered(benchmark).is_empty()
    }
}

impl fmt::Display for FilterComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            FilterOp::Eq => "=",
            FilterOp::Ne => "!=",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
            FilterOp::Is => "IS",
            FilterOp::NotExists => return write!(f, "$.{} NOT EXISTS", self.field),
            FilterOp::Exists => return write!(f, "$.{} EXISTS", self.field),
        };
        write!(f, "$.{} {op} \"{}\"", self.field, self.value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn and(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::True, Truth::True) => Truth::True,
            _ => Truth::Unknown,
        }
    }

    fn or(self, other: Truth) -> Truth {
        match (self, other) {
            (Truth::True, _) | (_, Truth::True) => Truth::True,
            (Truth::False, Truth::False) => Truth::False,
            _ => Truth::Unknown,
        }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
}

/// `*` matches any run of characters (CloudWatch's wildcard in `=` and `!=` values).
fn glob(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, tail)) => {
            let Some(rest) = value.strip_prefix(head) else { return false };
            (0..=rest.len()).filter(|i| rest.is_char_boundary(*i)).any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// What `known` (a conjunction that holds) says of `c`. Values compare case-sensitively, as
/// CloudWatch Logs does.
fn implied(known: &[FilterComparison], c: &FilterComparison) -> Truth {
    let same_field: Vec<&FilterComparison> = known.iter().filter(|k| k.field == c.field).collect();
    // The very same comparison is known.
    if same_field.contains(&c) {
        return Truth::True;
    }
    let equal: Vec<&&FilterComparison> = same_field.iter().filter(|k| k.op == FilterOp::Eq).collect();
    // `= v` known, `v` a literal or a wildcard pattern: `= w` holds when `w` matches `v` read
    // literally (each `*` of `w` then stands for a part of `v`, whatever `v`'s own `*`s become),
    // so `AccessDenied*` is covered by `Access*` and by `*`.
    if c.op == FilterOp::Eq && equal.iter().any(|k| glob(&c.value, &k.value)) {
        return Truth::True;
    }
    // A field known equal to an exact value decides every `=` and `!=` (and existence) on it.
    let exact = equal.iter().find(|k| !k.value.contains('*'));
    match (c.op, exact) {
        (FilterOp::Eq, Some(_)) => return Truth::False,
        (FilterOp::Ne, Some(k)) => return if glob(&c.value, &k.value) { Truth::False } else { Truth::True },
        _ => {}
    }
    match c.op {
        // Any `=` known (a wildcard too) says the field exists.
        FilterOp::Exists if !equal.is_empty() => Truth::True,
        FilterOp::NotExists if !equal.is_empty() || same_field.iter().any(|k| k.op == FilterOp::Exists) => Truth::False,
        // `!= v` known contradicts `= v`; `NOT EXISTS` known contradicts any `=`.
        FilterOp::Eq
            if same_field.iter().any(|k| k.op == FilterOp::Ne && k.value == c.value)
                || same_field.iter().any(|k| k.op == FilterOp::NotExists) =>
        {
            Truth::False
        }
        // `= v` known (a wildcard value): `!= v` is false.
        FilterOp::Ne if equal.iter().any(|k| k.value == c.value) => Truth::False,
        FilterOp::Exists => implied(known, &FilterComparison { op: FilterOp::NotExists, ..c.clone() }).not(),
        _ => Truth::Unknown,
    }
}

// ------------------------------------------------------------------ the benchmark's patterns

/// One CIS 4.x recommendation: its control and the benchmark's filter pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitoringClass {
    pub control: ControlId,
    /// What the class watches, in a few words.
    pub watches: &'static str,
    /// The pattern as CIS AWS Foundations v3.0 gives it.
    pub pattern: &'static str,
}

/// The fifteen classes, in benchmark order.
pub const MONITORING_CLASSES: &[MonitoringClass] = &[
    MonitoringClass {
        control: ControlId::Cis3_4_1,
        watches: "unauthorized API calls",
        pattern: r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") && ($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket") }"#,
    },
    MonitoringClass {
        control: ControlId::Cis3_4_2,
        watches: "console sign-in without MFA",
        pattern: r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
    },
    MonitoringClass {
        control: ControlId::Cis3_4_3,
        watches: "root user usage",
        pattern: r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#,
    },
    MonitoringClass {
        control: ControlId::Cis3_4_4,
        watches: "IAM policy changes",
        pattern: "{ ($.eventSource = iam.amazonaws.com) && (($.eventName = DeleteGroupPolicy) || ($.eventName = DeleteRolePolicy) || ($.eventName = DeleteUserPolicy) || ($.eventName = PutGroupPolicy) || ($.eventName = PutRolePolicy) || ($.eventName = PutUserPolicy) || ($.eventName = CreatePolicy) || ($.eventName = DeletePolicy) || ($.eventName = CreatePolicyVersion) || ($.eventName = DeletePolicyVersion) || ($.eventName = SetDefaultPolicyVersion) || ($.eventName = AttachRolePolicy) || ($.eventName = DetachRolePolicy) || ($.eventName = AttachUserPolicy) || ($.eventName = DetachUserPolicy) || ($.eventName = AttachGroupPolicy) || ($.eventName = DetachGroupPolicy)) }",
    },
    MonitoringClass {
        control: ControlId::Cis3_4_5,
        watches: "CloudTrail configuration changes",
        pattern: "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }",
    },
    MonitoringClass {
        control: ControlId::Cis3_4_6,
        watches: "console authentication failures",
        pattern: r#"{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }"#,
    },
    MonitoringClass {
        control: ControlId::Cis3_4_7,
        watches: "disabling or scheduled deletion of customer managed keys",
        pattern: "{ ($.eventSource = kms.amazonaws.com) && (($.eventName = DisableKey) || ($.eventName = ScheduleKeyDeletion)) }",
    },
    MonitoringClass {
        control: ControlId::Cis3_4_8,
        watches: "S3 bucket policy changes",
        pattern: "{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || ($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || ($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }",
    },
    MonitoringClass {
        control: ControlId::Cis3_4_9,
        watches: "AWS Config configuration changes",
        pattern: "{ ($.eventSource = config.amazonaws.com) && (($.eventName = StopConfigurationRecorder) || ($.eventName = DeleteDeliveryChannel) || ($.eventName = PutDeliveryChannel) || ($.eventName = PutConfigurationRecorder)) }",
    },
    MonitoringClass {
        control: ControlId::Cis3_4_10,
        watches: "security group changes",
        pattern: "{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }",
    },
    MonitoringClass {
        control: ControlId::Cis3_4_11,
        watches: "network ACL changes",
        pattern: "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || ($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || ($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }",
    },
    MonitoringClass {
        control: ControlId::Cis3_4_12,
        watches: "network gateway changes",
        pattern: "{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || ($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || ($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }",
    },
    MonitoringClass {
        control: ControlId::Cis3_4_13,
        watches: "route table changes",
        pattern: "{ ($.eventSource = ec2.amazonaws.com) && (($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable)) }",
    },
    MonitoringClass {
        control: ControlId::Cis3_4_14,
        watches: "VPC changes",
        pattern: "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }",
    },
    MonitoringClass {
        control: ControlId::Cis3_4_15,
        watches: "AWS Organizations changes",
        pattern: r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#,
    },
];

impl MonitoringClass {
    /// The class of `control`, if it is one of CIS 4.1–4.15.
    pub fn of(control: ControlId) -> Option<&'static MonitoringClass> {
        MONITORING_CLASSES.iter().find(|c| c.control == control)
    }

    /// The benchmark's pattern, parsed (the patterns are constants; a unit test parses each).
    pub fn benchmark(&self) -> Option<FilterPattern> {
        FilterPattern::parse(self.pattern).ok()
    }
}

// ------------------------------------------------------------------ the chain

/// One metric filter of a log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricFilterFacts {
    pub log_group: String,
    pub name: String,
    pub pattern: String,
    /// The metrics it publishes, as (namespace, metric name).
    pub metrics: Vec<(String, String)>,
}

/// One CloudWatch alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmFacts {
    pub name: String,
    pub namespace: String,
    pub metric: String,
    /// Its `AlarmActions` (SNS topic ARNs among them).
    pub actions: Vec<String>,
    pub actions_enabled: bool,
}

/// One SNS topic and how many confirmed subscriptions it has (pending ones do not count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFacts {
    pub arn: String,
    pub confirmed_subscriptions: usize,
}

/// What the monitoring chain reads: the account's trails (with their log groups), the metric
/// filters of those log groups, the alarms, and the topics alarms notify.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonitoringFacts {
    pub filters: Vec<MetricFilterFacts>,
    pub alarms: Vec<AlarmFacts>,
    pub topics: Vec<TopicFacts>,
    /// Parts that could not be read (a log group's filters, a topic's subscriptions).
    pub unreadable: Vec<Unreadable>,
}

/// The log groups (ARNs) of the trails that can carry the chain: multi-region, logging without a
/// delivery error, recording every read and write management event (CloudTrail.1's health), and
/// delivering to CloudWatch Logs.
pub fn monitored_log_groups(trails: &[TrailFacts], unreadable: &[Unreadable]) -> BTreeSet<String> {
    trails
        .iter()
        .filter(|t| !unreadable.iter().any(|u| u.resource == t.arn))
        .filter(|t| t.problems().is_empty())
        .filter_map(|t| t.cloudwatch_logs_group_arn.clone())
        .filter(|arn| log_group_name(arn).is_some())
        .collect()
}

/// The region of an ARN (`arn:aws:logs:eu-west-1:...` → `eu-west-1`).
pub fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// `arn:aws:logs:us-east-1:123456789012:log-group:CloudTrail/main:*` → `CloudTrail/main`.
pub fn log_group_name(arn: &str) -> Option<String> {
    let (_, rest) = arn.split_once(":log-group:")?;
    let name = rest.strip_suffix(":*").unwrap_or(rest);
    (!name.is_empty()).then(|| name.to_owned())
}

/// CIS 4.x for `class`: some metric filter on a monitored log group covers the benchmark's
/// pattern, publishes a metric that an alarm with enabled actions watches, and one of that alarm's
/// actions is an SNS topic with a confirmed subscription. Fails naming the first missing link.
pub fn evaluate_monitoring(
    class: &MonitoringClass,
    account: &str,
    log_group_arns: &BTreeSet<String>,
    facts: &MonitoringFacts,
) -> ControlResult {
    let control = class.control;
    let log_groups: BTreeSet<String> = log_group_arns.iter().filter_map(|a| log_group_name(a)).collect();
    let resource = || vec![format!("monitoring:{account}:{}", control.as_str())];
    let Some(benchmark) = class.benchmark() else {
        return ControlResult::fail(control, resource(), "the benchmark's pattern does not parse (a bug)");
    };
    if log_groups.is_empty() {
        return match facts.unreadable.first() {
            Some(u) => ControlResult::unknown(control, u.error_code, u.describe()),
            None => ControlResult::fail(
                control,
                resource(),
                "no healthy multi-region trail delivers to CloudWatch Logs (CloudTrail.1's health, plus \
                 CloudWatchLogsLogGroupArn)",
            ),
        };
    }
    // The filter that covers the most of the benchmark without covering all of it names what is
    // missed; a filter that covers none of it is not "close".
    let conjunctions = benchmark.conjunctions();
    let mut closest: Option<(usize, String)> = None;
    let mut unparsed: Option<String> = None;
    let mut covering = Vec::new();
    for f in facts.filters.iter().filter(|f| log_groups.contains(&f.log_group)) {
        match FilterPattern::parse(&f.pattern) {
            Ok(p) => {
                let missing = p.uncovered(&benchmark);
                if missing.is_empty() {
                    covering.push(f);
                } else if missing.len() < conjunctions && closest.as_ref().is_none_or(|(n, _)| missing.len() < *n) {
                    closest = Some((missing.len(), format!("filter {} misses {}", f.name, missing.join("; "))));
                }
            }
            Err(e) => {
                unparsed.get_or_insert_with(|| format!("filter {}: {e}", f.name));
            }
        }
    }
    let unread = || facts.unreadable.first();
    if covering.is_empty() {
        if let Some(u) = unread() {
            return ControlResult::unknown(
                control,
                u.error_code,
                format!("no readable filter covers it; {}", u.describe()),
            );
        }
        let why = match (closest, unparsed) {
            (Some((_, c)), _) => format!("no metric filter covers the {} pattern ({c})", class.watches),
            (None, Some(u)) => format!("no metric filter for {} on the trail's log group ({u})", class.watches),
            (None, None) => format!("no metric filter for {} on the trail's log group", class.watches),
        };
        return ControlResult::fail(control, resource(), why);
    }
    let metrics: BTreeSet<&(String, String)> = covering.iter().flat_map(|f| f.metrics.iter()).collect();
    let alarms: Vec<&AlarmFacts> = facts
        .alarms
        .iter()
        .filter(|a| a.actions_enabled && metrics.contains(&(a.namespace.clone(), a.metric.clone())))
        .collect();
    if alarms.is_empty() {
        let names: Vec<String> = metrics.iter().map(|(ns, m)| format!("{ns}/{m}")).collect();
        return ControlResult::fail(
            control,
            resource(),
            format!("no alarm with enabled actions watches the metric {}", names.join(", ")),
        );
    }
    let notified = alarms
        .iter()
        .flat_map(|a| a.actions.iter())
        .any(|action| facts.topics.iter().any(|t| &t.arn == action && t.confirmed_subscriptions > 0));
    if notified {
        return ControlResult::pass(control);
    }
    if let Some(u) = unread() {
        return ControlResult::unknown(
            control,
            u.error_code,
            format!("no readable topic has a subscriber; {}", u.describe()),
        );
    }
    let names: Vec<&str> = alarms.iter().map(|a| a.name.as_str()).collect();
    ControlResult::fail(
        control,
        resource(),
        format!("alarm(s) {} notify no SNS topic with a confirmed subscription", names.join(", ")),
    )
}

/// CIS 4.16: Security Hub is enabled in the region. `hub`: the hub's ARN (`DescribeHub`), `None`
/// when the account is not subscribed there.
pub fn evaluate_security_hub(account: &str, region: &str, hub: Option<&str>) -> ControlResult {
    match hub {
        Some(_) => ControlResult::pass(ControlId::Cis3_4_16),
        None => ControlResult::fail(
            ControlId::Cis3_4_16,
            vec![format!("arn:aws:securityhub:{region}:{account}:hub/default")],
            format!("Security Hub is not enabled in {region}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::posture::controls::Status;

    fn p(text: &str) -> FilterPattern {
        FilterPattern::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn every_benchmark_pattern_parses_and_covers_itself() {
        assert_eq!(MONITORING_CLASSES.len(), 15);
        for (i, class) in MONITORING_CLASSES.iter().enumerate() {
            let b = class.benchmark().unwrap_or_else(|| panic!("{}", class.control));
            assert!(b.covers(&b), "{}", class.control);
            assert_eq!(class.control.as_str(), format!("CIS3-4.{}", i + 1));
            assert_eq!(MonitoringClass::of(class.control), Some(class));
        }
    }

    #[test]
    fn coverage_is_decided_on_the_parsed_pattern() {
        let cis45 = MonitoringClass::of(ControlId::Cis3_4_5).unwrap().benchmark().unwrap();
        // Reordered, requoted, respaced, with an extra alternative: covers.
        let other = p(r#"{($.eventName="StopLogging")||($.eventName=DeleteTrail)||($.eventName = "CreateTrail")||
            ($.eventName=UpdateTrail)||($.eventName=StartLogging)||($.eventName=PutEventSelectors)}"#);
        assert!(other.covers(&cis45));
        // Without StopLogging: does not, and says what is missing.
        let partial = p(
            "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) }",
        );
        assert_eq!(partial.uncovered(&cis45), vec![r#"$.eventName = "StopLogging""#]);
        // Narrowed by an extra condition (only one source IP): does not cover.
        let narrowed = p(
            r#"{ (($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging)) && ($.sourceIPAddress = "10.0.0.1") }"#,
        );
        assert!(!narrowed.covers(&cis45));
        // A wildcard covers every name it matches.
        assert!(p(r#"{ $.eventName = "*" }"#).covers(&cis45));
        assert!(!p(r#"{ $.eventName = "Start*" }"#).covers(&cis45));

        // 4.4 without the event source condition covers (it matches more); with another source it
        // does not.
        let cis44 = MonitoringClass::of(ControlId::Cis3_4_4).unwrap().benchmark().unwrap();
        let names = "($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||($.eventName=DeleteUserPolicy)||($.eventName=PutGroupPolicy)||($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)||($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||($.eventName=CreatePolicyVersion)||($.eventName=DeletePolicyVersion)||($.eventName=SetDefaultPolicyVersion)||($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)||($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||($.eventName=AttachGroupPolicy)||($.eventName=DetachGroupPolicy)";
        assert!(p(&format!("{{ {names} }}")).covers(&cis44));
        assert!(p(&format!("{{ ($.eventSource=iam.amazonaws.com) && ({names}) }}")).covers(&cis44));
        assert!(!p(&format!("{{ ($.eventSource=sts.amazonaws.com) && ({names}) }}")).covers(&cis44));

        // 4.3: the same conditions in another order and grouping.
        let cis43 = MonitoringClass::of(ControlId::Cis3_4_3).unwrap().benchmark().unwrap();
        let root = p(
            r#"{ ($.eventType != "AwsServiceEvent") && ($.userIdentity.invokedBy NOT EXISTS) && ($.userIdentity.type = Root) }"#,
        );
        assert!(root.covers(&cis43));
        // Dropping a condition matches more: still covers. Adding one matches less: does not.
        assert!(p(r#"{ $.userIdentity.type = "Root" }"#).covers(&cis43));
        assert!(!p(r#"{ $.userIdentity.type = "Root" && $.eventName = "ConsoleLogin" }"#).covers(&cis43));

        // Wildcards: a broader wildcard covers a narrower one, never the reverse.
        let cis41 = MonitoringClass::of(ControlId::Cis3_4_1).unwrap().benchmark().unwrap();
        assert!(p(r#"{ $.errorCode = "*" }"#).covers(&cis41));
        assert!(p(r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "Access*") }"#).covers(&cis41));
        assert_eq!(
            p(r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied") }"#).uncovered(&cis41),
            vec![
                r#"$.errorCode = "AccessDenied*" && $.sourceIPAddress != "delivery.logs.amazonaws.com" && $.eventName != "HeadBucket""#
            ]
        );
        assert!(p(r#"{ $.errorCode EXISTS }"#).covers(&cis41));

        // 4.2: `!=` conditions are kept as they are (an equal condition would be narrower).
        let cis42 = MonitoringClass::of(ControlId::Cis3_4_2).unwrap().benchmark().unwrap();
        assert!(p(r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }"#).covers(&cis42));
        assert!(!p(r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed = "No") }"#).covers(&cis42));
    }

    #[test]
    fn bad_patterns_are_errors_with_a_position() {
        for bad in [
            "ERROR",
            "{ $.eventName = }",
            "{ ($.eventName = A }",
            "{ eventName = A }",
            r#"{ $.a = "x }"#,
            "{ $.a IS maybe }",
        ] {
            assert!(FilterPattern::parse(bad).is_err(), "{bad}");
        }
        let e = FilterPattern::parse("{ $.a = 1 ) }").unwrap_err();
        assert!(e.what.contains("after the pattern"), "{e}");
        assert_eq!(
            p("{ $.a IS TRUE }"),
            FilterPattern::Cmp(FilterComparison { field: "a".into(), op: FilterOp::Is, value: "TRUE".into() })
        );
        assert!(glob("*UnauthorizedOperation", "Client.UnauthorizedOperation"));
        assert!(glob("Access*", "AccessDenied*"));
        assert!(glob("AccessDenied*", "AccessDenied"));
        assert!(!glob("AccessDenied*", "Denied"));
    }

    fn healthy_trail() -> TrailFacts {
        TrailFacts {
            arn: "arn:aws:cloudtrail:us-east-1:123456789012:trail/main".into(),
            home_region: "us-east-1".into(),
            is_multi_region: true,
            log_file_validation: true,
            kms_key_id: Some("k".into()),
            is_logging: true,
            cloudwatch_logs_group_arn: Some("arn:aws:logs:us-east-1:123456789012:log-group:trail-logs:*".into()),
            ..TrailFacts::default()
        }
    }

    fn chain(pattern: &str) -> MonitoringFacts {
        MonitoringFacts {
            filters: vec![MetricFilterFacts {
                log_group: "trail-logs".into(),
                name: "trail-changes".into(),
                pattern: pattern.into(),
                metrics: vec![("CISBenchmark".into(), "TrailChanges".into())],
            }],
            alarms: vec![AlarmFacts {
                name: "trail-changes".into(),
                namespace: "CISBenchmark".into(),
                metric: "TrailChanges".into(),
                actions: vec!["arn:aws:sns:us-east-1:123456789012:security".into()],
                actions_enabled: true,
            }],
            topics: vec![TopicFacts {
                arn: "arn:aws:sns:us-east-1:123456789012:security".into(),
                confirmed_subscriptions: 1,
            }],
            unreadable: vec![],
        }
    }

    #[test]
    fn the_chain_needs_every_link() {
        let class = MonitoringClass::of(ControlId::Cis3_4_5).unwrap();
        let groups = monitored_log_groups(&[healthy_trail()], &[]);
        assert_eq!(groups, BTreeSet::from(["arn:aws:logs:us-east-1:123456789012:log-group:trail-logs:*".to_owned()]));
        assert_eq!(groups.iter().next().and_then(|a| arn_region(a)), Some("us-east-1"));
        let eval = |facts: &MonitoringFacts| evaluate_monitoring(class, "123456789012", &groups, facts);
        assert_eq!(eval(&chain(class.pattern)).status, Status::Pass);

        let reason = |f: &MonitoringFacts| eval(f).reason.unwrap_or_default();
        let mut f = chain("{ ($.eventName = CreateTrail) }");
        assert!(reason(&f).contains("misses"), "{}", reason(&f));
        f = chain(class.pattern);
        f.alarms[0].actions_enabled = false;
        assert!(reason(&f).contains("no alarm"), "{}", reason(&f));
        f = chain(class.pattern);
        f.alarms[0].metric = "Other".into();
        assert!(reason(&f).contains("no alarm"));
        f = chain(class.pattern);
        f.topics[0].confirmed_subscriptions = 0;
        assert!(reason(&f).contains("no SNS topic with a confirmed subscription"));
        // A filter on another log group does not count.
        f = chain(class.pattern);
        f.filters[0].log_group = "elsewhere".into();
        assert_eq!(eval(&f).status, Status::Fail);
        // Unreadable topic subscriptions: unknown, not fail.
        f = chain(class.pattern);
        f.topics.clear();
        f.unreadable.push(Unreadable {
            resource: "arn:aws:sns:us-east-1:123456789012:security".into(),
            error_code: ErrorCode::AccessDenied,
            reason: "sns:ListSubscriptionsByTopic: AccessDenied".into(),
        });
        let r = eval(&f);
        assert_eq!((r.status, r.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)));

        // No healthy trail delivering to CloudWatch Logs.
        let stopped = TrailFacts { is_logging: false, ..healthy_trail() };
        assert!(monitored_log_groups(&[stopped], &[]).is_empty());
        let no_logs = TrailFacts { cloudwatch_logs_group_arn: None, ..healthy_trail() };
        let none = monitored_log_groups(&[no_logs], &[]);
        let r = evaluate_monitoring(class, "123456789012", &none, &chain(class.pattern));
        assert_eq!(r.status, Status::Fail);
        assert!(r.reason.unwrap().contains("CloudWatch Logs"));
        assert_eq!(log_group_name("arn:aws:logs:us-east-1:1:log-group:a/b:*"), Some("a/b".into()));
    }

    #[test]
    fn security_hub_is_on_or_the_region_fails() {
        assert_eq!(
            evaluate_security_hub("1", "eu-west-1", Some("arn:aws:securityhub:eu-west-1:1:hub/default")).status,
            Status::Pass
        );
        let off = evaluate_security_hub("1", "eu-west-1", None);
        assert_eq!(off.status, Status::Fail);
        assert_eq!(off.failing_resources, vec!["arn:aws:securityhub:eu-west-1:1:hub/default"]);
    }
}
