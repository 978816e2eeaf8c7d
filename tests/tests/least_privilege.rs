//! Least privilege, derived from the code: every AWS operation each worker's code calls, read from its
//! sources with `syn`, against the IAM policy the stack gives that worker (and the roles the member-account
//! template gives the workers there), judged with IAM's policy grammar (`portcullis_domain::iam_policy`).
//!
//! The emulator evaluates no IAM, so this is the test that sees a missing permission: a new control or port
//! that calls AWS without its action in the worker's policy fails here, naming the action, the policy and
//! the template to add it to; a permission no code calls fails too.
//!
//! How an operation is found: a fluent call that starts an SDK request, `<client>.op_name()` (no arguments),
//! where `op_name` is an operation of one of the `aws-sdk-*` crates the workspace uses (their
//! `src/operation/` modules, located with `cargo metadata`). The operation becomes its IAM action
//! (`iam:list_mfa_devices` → `iam:ListMFADevices`, matched case-insensitively against the action catalog),
//! with the exceptions IAM has ([`action_exceptions`]): batch calls authorised by their single action,
//! `s3control:GetPublicAccessBlock` → `s3:GetAccountPublicAccessBlock`, a DynamoDB transaction by the item
//! actions it holds, `AssumeRole` with a source identity needing `sts:SetSourceIdentity`. Code under
//! `#[cfg(test)]` (or a `test-util` feature) is not read: it never runs with the worker's role.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use portcullis_domain::iam_catalog::catalog;
use portcullis_domain::iam_policy::PolicyDocument;
use syn::visit::Visit;

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

// ---------------------------------------------------------------- what each worker runs

/// A part of the code a worker runs.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// A crate's library: `src/lib.rs` and every module it declares (test modules left out).
    Crate(&'static str),
    /// One module file and its submodules.
    Module(&'static str),
    /// Some functions of a file (the wiring in `workers/worker/src/app.rs` shared by the workers).
    Functions(&'static str, &'static [&'static str]),
}

const QUEUE: Unit = Unit::Module("common/runtime/src/queue/mod.rs");
const APP: &str = "workers/worker/src/app.rs";

/// One role (or managed policy) and the code that runs with it.
#[derive(Debug)]
struct Holder {
    /// Who runs with it, for messages.
    who: &'static str,
    /// The template, relative to the repository root.
    template: &'static str,
    /// The logical id of the `AWS::IAM::ManagedPolicy` or `AWS::IAM::Role` (inline policies).
    resource: &'static str,
    units: &'static [Unit],
    /// Services whose operations this holder is about (the member-account roles hold only some).
    services: Option<&'static [&'static str]>,
}

const STACK: &str = "infra/cloudformation/portcullis.yaml";
const MEMBER: &str = "infra/cloudformation/member-account.yaml";

/// The read-only services the posture collectors read; the member account's posture role holds these.
const POSTURE_READ_SERVICES: &[&str] = &[
    "cloudtrail",
    "config",
    "ec2",
    "guardduty",
    "iam",
    "kms",
    "s3",
    "account",
    "logs",
    "cloudwatch",
    "sns",
    "securityhub",
    "rds",
    "elasticfilesystem",
    "access-analyzer",
];

fn holders() -> Vec<Holder> {
    vec![
        Holder {
            who: "the access worker",
            template: STACK,
            resource: "AccessWorkerPolicy",
            units: &[
                Unit::Crate("workers/access"),
                QUEUE,
                Unit::Functions(
                    APP,
                    &["run_access", "access_ports", "session_revoker", "session_revoker_counted", "count_reviews_owed"],
                ),
            ],
            services: None,
        },
        Holder {
            who: "the directory worker",
            template: STACK,
            resource: "DirectoryWorkerPolicy",
            // The directory worker's handler reaches the access crate only through the ports below (the
            // store, replies, session revoker and audit; never the credential broker or the evidence
            // reader): `the_directory_worker_uses_no_broker` keeps this list honest.
            units: &[
                Unit::Crate("workers/directory"),
                Unit::Module("workers/access/src/adapters/dynamo.rs"),
                Unit::Module("workers/access/src/adapters/sqs_reply.rs"),
                Unit::Module("workers/access/src/adapters/iam.rs"),
                Unit::Module("workers/access/src/adapters/events.rs"),
                QUEUE,
                Unit::Functions(APP, &["run_directory", "session_revoker", "session_revoker_counted"]),
            ],
            services: None,
        },
        Holder {
            who: "the posture worker",
            template: STACK,
            resource: "PostureWorkerPolicy",
            units: &[
                Unit::Crate("workers/posture"),
                QUEUE,
                Unit::Functions(APP, &["run_posture", "run_posture_with", "scan_once", "scan_once_counted"]),
            ],
            services: None,
        },
        Holder {
            who: "the Slack edge",
            template: STACK,
            resource: "SlackEdgePolicy",
            // The edge and the parts of the client a trusted producer runs (its shared reply queue:
            // never `connect`'s private queue nor `close`).
            units: &[
                Unit::Crate("slack"),
                Unit::Functions(
                    "client/src/client.rs",
                    &["send_text", "wait_own_reply", "queue_url", "create_reply_queue"],
                ),
            ],
            services: None,
        },
        Holder {
            who: "the posture worker reading a member account",
            template: MEMBER,
            resource: "PostureReadRole",
            units: &[Unit::Module("workers/posture/src/collect/mod.rs")],
            services: Some(POSTURE_READ_SERVICES),
        },
        Holder {
            who: "the access and directory workers revoking sessions in a member account",
            template: MEMBER,
            resource: "RevokerRole",
            units: &[Unit::Module("workers/access/src/adapters/iam.rs")],
            services: None,
        },
    ]
}

// ---------------------------------------------------------------- the SDK's operations

/// The IAM service prefix of each SDK crate the workspace uses.
const SDK_SERVICES: &[(&str, &str)] = &[
    ("aws-sdk-accessanalyzer", "access-analyzer"),
    ("aws-sdk-account", "account"),
    ("aws-sdk-cloudformation", "cloudformation"),
    ("aws-sdk-cloudtrail", "cloudtrail"),
    ("aws-sdk-cloudwatch", "cloudwatch"),
    ("aws-sdk-cloudwatchlogs", "logs"),
    ("aws-sdk-config", "config"),
    ("aws-sdk-dynamodb", "dynamodb"),
    ("aws-sdk-ec2", "ec2"),
    ("aws-sdk-efs", "elasticfilesystem"),
    ("aws-sdk-eventbridge", "events"),
    ("aws-sdk-guardduty", "guardduty"),
    ("aws-sdk-iam", "iam"),
    ("aws-sdk-kms", "kms"),
    ("aws-sdk-rds", "rds"),
    ("aws-sdk-s3", "s3"),
    ("aws-sdk-s3control", "s3"),
    ("aws-sdk-securityhub", "securityhub"),
    ("aws-sdk-sns", "sns"),
    ("aws-sdk-sqs", "sqs"),
    ("aws-sdk-sts", "sts"),
];

/// Operation (snake_case, as the fluent client names it) → the SDK crates that have it.
#[derive(Debug)]
struct Sdks {
    ops: BTreeMap<String, Vec<&'static str>>,
}

impl Sdks {
    /// Read every SDK crate's `src/operation/` through `cargo metadata` (offline: the lock file's versions).
    fn load() -> Self {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--offline", "--locked"])
            .current_dir(root())
            .output()
            .expect("cargo metadata runs");
        assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON");
        let mut ops: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
        for (krate, _) in SDK_SERVICES {
            let manifest = meta["packages"]
                .as_array()
                .expect("packages")
                .iter()
                .filter(|p| p["name"] == *krate)
                .filter_map(|p| p["manifest_path"].as_str())
                .max()
                .unwrap_or_else(|| panic!("{krate} is not in the dependency graph"));
            let dir = Path::new(manifest).parent().expect("crate dir").join("src/operation");
            let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for entry in entries {
                let name = entry.expect("dir entry").file_name().to_string_lossy().into_owned();
                if let Some(op) = name.strip_suffix(".rs") {
                    ops.entry(op.to_owned()).or_default().push(*krate);
                }
            }
        }
        assert!(ops.len() > 500, "read too few SDK operations ({}): is cargo metadata right?", ops.len());
        Self { ops }
    }

    fn crates_of(&self, op: &str) -> &[&'static str] {
        self.ops.get(op).map(Vec::as_slice).unwrap_or_default()
    }
}

fn service_of(krate: &str) -> &'static str {
    SDK_SERVICES.iter().find(|(k, _)| *k == krate).map(|(_, s)| *s).expect("a known SDK crate")
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The IAM actions an operation needs where IAM does not name the action after the operation, given the
/// builder methods set on the request and the file it is in. `None`: the ordinary rule applies.
fn action_exceptions(krate: &str, op: &str, builder: &[String], file: &syn::File) -> Option<Vec<String>> {
    let set = |m: &str| builder.iter().any(|b| b == m);
    let service = service_of(krate);
    // S3 and S3 Control share the `s3` prefix and some operation names.
    if krate == "aws-sdk-s3" {
        return match op {
            "get_public_access_block" => Some(vec!["s3:GetBucketPublicAccessBlock".into()]),
            "list_buckets" => Some(vec!["s3:ListAllMyBuckets".into()]),
            _ => None,
        };
    }
    let actions: Vec<&str> = match (service, op) {
        // Batch calls are authorised by the action of one entry.
        ("sqs", "delete_message_batch") => vec!["sqs:DeleteMessage"],
        ("sqs", "send_message_batch") => vec!["sqs:SendMessage"],
        ("sqs", "change_message_visibility_batch") => vec!["sqs:ChangeMessageVisibility"],
        // S3 Control's account-level Block Public Access is authorised as an S3 account action.
        ("s3", "get_public_access_block") => vec!["s3:GetAccountPublicAccessBlock"],
        ("s3", "put_public_access_block") => vec!["s3:PutAccountPublicAccessBlock"],
        ("s3", "delete_public_access_block") => vec!["s3:PutAccountPublicAccessBlock"],
        // GetCallerIdentity needs no permission (an explicit deny cannot stop it either).
        ("sts", "get_caller_identity") => vec![],
        ("sts", "assume_role") => {
            let mut a = vec!["sts:AssumeRole"];
            if set("source_identity") {
                a.push("sts:SetSourceIdentity");
            }
            if set("tags") || set("set_tags") || set("transitive_tag_keys") {
                a.push("sts:TagSession");
            }
            a
        }
        // A transaction is authorised item by item: the actions of the items this file builds.
        ("dynamodb", "transact_write_items") => {
            let mut paths = PathsUsed::default();
            paths.visit_file(file);
            let mut a = Vec::new();
            for (ty, action) in [
                ("Put", "dynamodb:PutItem"),
                ("Update", "dynamodb:UpdateItem"),
                ("Delete", "dynamodb:DeleteItem"),
                ("ConditionCheck", "dynamodb:ConditionCheckItem"),
            ] {
                if paths.0.contains(&format!("{ty}::builder")) {
                    a.push(action);
                }
            }
            assert!(!a.is_empty(), "a TransactWriteItems call builds no Put/Update/Delete/ConditionCheck item");
            a
        }
        ("dynamodb", "transact_get_items") => vec!["dynamodb:GetItem"],
        _ => return None,
    };
    Some(actions.into_iter().map(str::to_owned).collect())
}

/// `Type::function` paths a file uses (for the items of a DynamoDB transaction).
#[derive(Debug, Default)]
struct PathsUsed(BTreeSet<String>);

impl<'ast> Visit<'ast> for PathsUsed {
    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        let segs: Vec<String> = p.path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segs.len() >= 2 {
            self.0.insert(segs[segs.len() - 2..].join("::"));
        }
        syn::visit::visit_expr_path(self, p);
    }
}

// ---------------------------------------------------------------- reading the sources

/// Where an action is needed: `file` in `fn`.
type Sites = BTreeMap<String, BTreeSet<String>>;

/// One SDK call found in the sources.
#[derive(Debug)]
struct Call {
    op: String,
    /// Identifiers of the receiver (`self.clients.iam` → `clients`, `iam`), to tell SDKs apart.
    receiver: Vec<String>,
    /// Builder methods chained after the operation, up to `.send()`.
    builder: Vec<String>,
    function: String,
}

/// Finds `<receiver>.op()` calls whose name is an SDK operation.
struct CallFinder<'a> {
    sdks: &'a Sdks,
    /// Only these functions (`Unit::Functions`), else every function.
    only: Option<&'a [&'a str]>,
    function: Vec<String>,
    calls: Vec<Call>,
    /// `assumed_role_config(..)` and `AssumeRoleProvider` are sts:AssumeRole through the SDK's provider.
    assumes_roles: Vec<String>,
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && match &a.meta {
                syn::Meta::List(l) => l.tokens.to_string().contains("test"),
                _ => false,
            }
    })
}

fn receiver_idents(e: &syn::Expr, out: &mut Vec<String>) {
    match e {
        syn::Expr::Field(f) => {
            receiver_idents(&f.base, out);
            if let syn::Member::Named(n) = &f.member {
                out.push(n.to_string());
            }
        }
        syn::Expr::Path(p) => out.extend(p.path.segments.iter().map(|s| s.ident.to_string())),
        syn::Expr::Reference(r) => receiver_idents(&r.expr, out),
        syn::Expr::Paren(p) => receiver_idents(&p.expr, out),
        syn::Expr::Call(c) => receiver_idents(&c.func, out),
        _ => {}
    }
}

impl CallFinder<'_> {
    fn in_scope(&self) -> bool {
        match (self.only, self.function.first()) {
            (None, _) => true,
            (Some(names), Some(f)) => names.contains(&f.as_str()),
            (Some(_), None) => false,
        }
    }

    fn here(&self) -> String {
        self.function.last().cloned().unwrap_or_else(|| "(module)".into())
    }
}

impl<'ast> Visit<'ast> for CallFinder<'_> {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        let attrs = match i {
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(x) => &x.attrs,
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Trait(t) => &t.attrs,
            _ => return syn::visit::visit_item(self, i),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_item(self, i);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.function.push(f.sig.ident.to_string());
        syn::visit::visit_item_fn(self, f);
        self.function.pop();
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if is_test_only(&f.attrs) {
            return;
        }
        self.function.push(f.sig.ident.to_string());
        syn::visit::visit_impl_item_fn(self, f);
        self.function.pop();
    }

    fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
        let name = m.method.to_string();
        if !self.in_scope() {
            return syn::visit::visit_expr_method_call(self, m);
        }
        if name == "send" {
            // Find the operation inside first, then give it the builder methods between it and `.send()`.
            syn::visit::visit_expr_method_call(self, m);
            let mut builder = Vec::new();
            let mut e: &syn::Expr = &m.receiver;
            while let syn::Expr::MethodCall(inner) = e {
                builder.push(inner.method.to_string());
                e = &inner.receiver;
            }
            if let Some(op) = builder.pop()
                && let Some(call) = self.calls.iter_mut().rev().find(|c| c.op == op && c.builder.is_empty())
            {
                call.builder = builder;
            }
            return;
        }
        // The start of a request: `client.op()`, an operation's name with no arguments.
        if m.args.is_empty() && !self.sdks.crates_of(&name).is_empty() {
            let mut receiver = Vec::new();
            receiver_idents(&m.receiver, &mut receiver);
            self.calls.push(Call { op: name, receiver, builder: Vec::new(), function: self.here() });
        }
        syn::visit::visit_expr_method_call(self, m);
    }

    // Calls inside `tokio::join!(..)` and the like: a macro whose body reads as expressions.
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        let parser = syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated;
        if let Ok(exprs) = m.parse_body_with(parser) {
            for e in &exprs {
                self.visit_expr(e);
            }
        }
        syn::visit::visit_macro(self, m);
    }

    fn visit_expr_call(&mut self, c: &'ast syn::ExprCall) {
        if self.in_scope()
            && let syn::Expr::Path(p) = &*c.func
            && p.path.segments.last().is_some_and(|s| s.ident == "assumed_role_config")
        {
            self.assumes_roles.push(self.here());
        }
        syn::visit::visit_expr_call(self, c);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if self.in_scope() && p.segments.iter().any(|s| s.ident == "AssumeRoleProvider") {
            self.assumes_roles.push(self.here());
        }
        syn::visit::visit_path(self, p);
    }
}

/// The files of a module rooted at `file` (`mod x;` → `x.rs` or `x/mod.rs` next to it or under its
/// own directory), test-only modules left out.
fn module_files(file: &Path, out: &mut Vec<(PathBuf, syn::File)>) {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let stem = file.file_stem().expect("a file name").to_string_lossy().into_owned();
    let dir = file.parent().expect("a parent");
    let children = if matches!(stem.as_str(), "lib" | "mod" | "main") { dir.to_path_buf() } else { dir.join(&stem) };
    for item in &parsed.items {
        if let syn::Item::Mod(m) = item
            && m.content.is_none()
            && !is_test_only(&m.attrs)
        {
            let name = m.ident.to_string();
            let flat = children.join(format!("{name}.rs"));
            let nested = children.join(&name).join("mod.rs");
            let child = if flat.exists() { flat } else { nested };
            module_files(&child, out);
        }
    }
    out.push((file.to_path_buf(), parsed));
}

/// Every IAM action the units call, each with where.
fn derive_actions(sdks: &Sdks, units: &[Unit]) -> BTreeMap<String, Sites> {
    let mut actions: BTreeMap<String, Sites> = BTreeMap::new();
    for unit in units {
        let (files, only) = match unit {
            Unit::Crate(dir) => (root().join(dir).join("src/lib.rs"), None),
            Unit::Module(file) => (root().join(file), None),
            Unit::Functions(file, names) => (root().join(file), Some(*names)),
        };
        let mut parsed = Vec::new();
        if only.is_some() {
            let text = std::fs::read_to_string(&files).expect("readable");
            parsed.push((files.clone(), syn::parse_file(&text).expect("parses")));
        } else {
            module_files(&files, &mut parsed);
        }
        if let Some(names) = only {
            for n in names {
                let defined = parsed[0].1.items.iter().any(|i| match i {
                    syn::Item::Fn(f) => f.sig.ident == n,
                    // A method of an `impl` block (the client's, which the Slack edge runs part of).
                    syn::Item::Impl(block) => {
                        block.items.iter().any(|m| matches!(m, syn::ImplItem::Fn(f) if f.sig.ident == n))
                    }
                    _ => false,
                });
                assert!(defined, "{} defines no fn {n}: update the units in this test", files.display());
            }
        }
        for (path, file) in &parsed {
            let rel = path.strip_prefix(root()).unwrap_or(path).display().to_string();
            let mut finder =
                CallFinder { sdks, only, function: Vec::new(), calls: Vec::new(), assumes_roles: Vec::new() };
            finder.visit_file(file);
            for call in &finder.calls {
                for action in call_actions(sdks, call, file, &rel) {
                    actions.entry(action).or_default().entry(rel.clone()).or_default().insert(call.function.clone());
                }
            }
            for function in finder.assumes_roles {
                actions.entry("sts:AssumeRole".into()).or_default().entry(rel.clone()).or_default().insert(function);
            }
        }
    }
    actions
}

/// The IAM actions of one call.
fn call_actions(sdks: &Sdks, call: &Call, file: &syn::File, rel: &str) -> Vec<String> {
    let crates = sdks.crates_of(&call.op);
    let krate = match crates {
        [one] => *one,
        many => {
            // The same operation name in several SDKs: the receiver says which (`iam.get_user()`).
            // A receiver named exactly after a crate (`s3` for aws-sdk-s3, `s3control`) says it first.
            let exact: Vec<&&str> =
                many.iter().filter(|k| call.receiver.iter().any(|r| k.strip_prefix("aws-sdk-") == Some(r))).collect();
            let named: Vec<&&str> = if exact.len() == 1 {
                exact
            } else {
                many.iter()
                    .filter(|k| call.receiver.iter().any(|r| r == service_of(k) || k.ends_with(r.as_str())))
                    .collect()
            };
            match named.as_slice() {
                [one] => **one,
                _ => panic!(
                    "{rel}, fn {}: `{}.{}()` is an operation of {many:?}; name the client after its service \
                     (e.g. `iam`, `sts`) so this test can tell which",
                    call.function,
                    call.receiver.join("."),
                    call.op
                ),
            }
        }
    };
    let service = service_of(krate);
    if let Some(actions) = action_exceptions(krate, &call.op, &call.builder, file) {
        return actions;
    }
    let guess = format!("{service}:{}", pascal(&call.op));
    match catalog().canonical(&guess) {
        Some(action) => vec![action.to_owned()],
        None => panic!(
            "{rel}, fn {}: {krate} operation `{}` has no IAM action named {guess}; add its action(s) to \
             action_exceptions in tests/tests/least_privilege.rs",
            call.function, call.op
        ),
    }
}

// ---------------------------------------------------------------- reading the templates

/// A CloudFormation template as JSON (short-form tags such as `!GetAtt X.Arn` read as their argument).
fn template(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    to_json(&docs[0])
}

fn to_json(y: &yaml_rust2::Yaml) -> serde_json::Value {
    use serde_json::Value;
    use yaml_rust2::Yaml;
    match y {
        Yaml::String(s) | Yaml::Real(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter().map(|(k, v)| (k.as_str().map(str::to_owned).unwrap_or_default(), to_json(v))).collect(),
        ),
        _ => Value::Null,
    }
}

/// The permissions a holder's resource gives: a managed policy's document, or a role's inline policies.
fn policy_of(holder: &Holder) -> PolicyDocument {
    let t = template(holder.template);
    let r = &t["Resources"][holder.resource];
    let docs: Vec<&serde_json::Value> = match r["Type"].as_str() {
        Some("AWS::IAM::ManagedPolicy") => vec![&r["Properties"]["PolicyDocument"]],
        Some("AWS::IAM::Role") => r["Properties"]["Policies"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: {} has no inline Policies", holder.template, holder.resource))
            .iter()
            .map(|p| &p["PolicyDocument"])
            .collect(),
        other => panic!("{}: {} is {other:?}, not a managed policy or role", holder.template, holder.resource),
    };
    PolicyDocument::union(
        docs.into_iter().map(|d| {
            PolicyDocument::parse(d).unwrap_or_else(|e| panic!("{} {}: {e}", holder.template, holder.resource))
        }),
    )
}

fn where_called(sites: &Sites) -> String {
    sites
        .iter()
        .map(|(file, fns)| format!("{file} (fn {})", fns.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Everything wrong with one holder's policy, as sentences that say what to change.
fn problems(sdks: &Sdks, holder: &Holder) -> Vec<String> {
    let mut derived = derive_actions(sdks, holder.units);
    if let Some(services) = holder.services {
        derived.retain(|a, _| services.iter().any(|s| a.starts_with(&format!("{s}:"))));
    }
    let policy = policy_of(holder);
    let mut problems = Vec::new();
    for (action, sites) in &derived {
        if !policy.allows(action) {
            problems.push(format!(
                "{} calls {action} in {} but {} in {} does not allow it: add `{action}` to {}",
                holder.who,
                where_called(sites),
                holder.resource,
                holder.template,
                holder.resource
            ));
        }
    }
    for unknown in policy.unknown_actions(catalog()) {
        problems.push(format!(
            "{} in {} allows `{unknown}`, which is no IAM action: fix its spelling or remove it",
            holder.resource, holder.template
        ));
    }
    for action in policy.allowed_actions(catalog()) {
        if !derived.keys().any(|d| d.eq_ignore_ascii_case(action)) {
            problems.push(format!(
                "{} in {} allows {action} (statement {}) but no code of {} calls it: remove it",
                holder.resource,
                holder.template,
                policy.allowing_statements(action).join(", "),
                holder.who
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------- the checks

#[test]
fn every_worker_policy_allows_exactly_what_its_code_calls() {
    let sdks = Sdks::load();
    let mut all = Vec::new();
    for holder in holders() {
        all.extend(problems(&sdks, &holder));
    }
    assert!(all.is_empty(), "least privilege, derived from the code:\n  - {}", all.join("\n  - "));
}

#[test]
fn the_derivation_finds_the_calls_a_worker_makes() {
    // Known calls of each kind the derivation must see: a plain call, a call in a `tokio::join!`, a
    // paginator, a batch call, an S3 Control exception, a transaction, AssumeRole with a source identity,
    // and a role assumed through the SDK's provider.
    let sdks = Sdks::load();
    let posture = derive_actions(&sdks, holders()[2].units);
    for action in [
        "iam:GetCredentialReport",
        "config:DescribeConfigurationRecorderStatus",
        "account:ListRegions",
        "s3:GetAccountPublicAccessBlock",
        "sqs:DeleteMessage",
        "iam:ListMFADevices",
        "sts:AssumeRole",
    ] {
        assert!(posture.contains_key(action), "the posture worker's {action} was not derived: {:?}", posture.keys());
    }
    assert!(!posture.contains_key("sts:GetCallerIdentity"), "GetCallerIdentity needs no permission");
    let access = derive_actions(&sdks, holders()[0].units);
    for action in
        ["sts:AssumeRole", "sts:SetSourceIdentity", "dynamodb:PutItem", "events:PutEvents", "iam:PutRolePolicy"]
    {
        assert!(access.contains_key(action), "the access worker's {action} was not derived: {:?}", access.keys());
    }
    assert!(!access.contains_key("cloudtrail:DescribeTrails"), "the access worker reads no posture");
}

#[test]
fn a_new_sdk_call_without_its_permission_fails_the_check() {
    // What adding a control that reads EBS volumes would look like, judged against the posture policy.
    let sdks = Sdks::load();
    let source = r#"
        impl AwsReader {
            async fn read_volumes(&self) -> Result<(), E> {
                let out = self.clients.ec2.describe_volumes().max_results(5).send().await;
                Ok(())
            }
        }
        #[cfg(test)]
        mod tests { fn t(c: Client) { c.describe_images().send(); } }
    "#;
    let file = syn::parse_file(source).expect("parses");
    let mut finder =
        CallFinder { sdks: &sdks, only: None, function: Vec::new(), calls: Vec::new(), assumes_roles: Vec::new() };
    finder.visit_file(&file);
    let actions: Vec<String> = finder.calls.iter().flat_map(|c| call_actions(&sdks, c, &file, "new.rs")).collect();
    assert_eq!(actions, ["ec2:DescribeVolumes"], "test-only code is not read");
    assert_eq!(finder.calls[0].builder, ["max_results"]);
    let posture = policy_of(&holders()[2]);
    assert!(!posture.allows("ec2:DescribeVolumes"), "the check would let the new call through");
}

#[test]
fn the_directory_worker_uses_no_broker() {
    // The directory worker's units leave out the credential broker and the evidence reader: its handler
    // and the access-crate parts it runs (Front, Revoker) must not reach them.
    for file in ["workers/directory/src/lib.rs", "workers/access/src/front.rs", "workers/access/src/revoke.rs"] {
        let text = std::fs::read_to_string(root().join(file)).expect("readable");
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        for port in [".broker", "EvidenceReader", "StsBroker"] {
            assert!(
                !code.contains(port),
                "{file} uses `{port}`: add the adapter it reaches to the directory worker's units in \
                 tests/tests/least_privilege.rs (and the permission to DirectoryWorkerPolicy)"
            );
        }
    }
}

#[test]
fn each_generated_worker_role_holds_its_own_policy_only() {
    let t = template(STACK);
    for (role, policy) in [
        ("AccessWorkerRole", "AccessWorkerPolicy"),
        ("DirectoryWorkerRole", "DirectoryWorkerPolicy"),
        ("PostureWorkerRole", "PostureWorkerPolicy"),
        ("SlackEdgeRole", "SlackEdgePolicy"),
    ] {
        let r = &t["Resources"][role];
        assert_eq!(r["Type"], "AWS::IAM::Role", "{role}");
        assert_eq!(r["Properties"]["ManagedPolicyArns"], serde_json::json!([policy]), "{role} holds only {policy}");
        assert!(r["Properties"].get("Policies").is_none(), "{role} has no inline policies");
    }
}
