//! Running in the cloud: the ECS template (`infra/cloudformation/ecs.yaml`) and the member-account template
//! agree with the code and the main stack: each service scales on its own worker's queue and runs as that
//! worker's role; a task has longer than the worker's shutdown grace to stop; member-account roles trust
//! exactly the central worker roles the main stack creates.

use std::path::Path;

use portcullis_domain::naming::StackNames;
use portcullis_runtime::config::WorkerSettings;
use serde_json::Value;

fn template(path: &str) -> Value {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}"));
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    to_json(&docs[0])
}

fn to_json(y: &yaml_rust2::Yaml) -> Value {
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

/// A `!Sub` string with `${Prefix}` filled in (other variables left as they are).
fn sub(v: &Value, prefix: &str) -> String {
    v.as_str().unwrap_or_else(|| panic!("{v} is not a string")).replace("${Prefix}", prefix)
}

const WORKERS: [&str; 3] = ["access", "directory", "posture"];

#[test]
fn an_ecs_task_outlives_the_workers_shutdown_grace() {
    let ecs = template("infra/cloudformation/ecs.yaml");
    let grace = WorkerSettings::default().shutdown_grace_seconds;
    let params = &ecs["Parameters"];
    assert_eq!(params["ShutdownGraceSeconds"]["Default"], grace, "ecs.yaml's grace is the workers' default");
    // main.rs: telemetry is flushed for up to 5 s after the workers stop, the runtime for 2 s.
    let stop = params["StopTimeoutSeconds"]["Default"].as_u64().expect("a number");
    assert!(stop >= grace + 7, "StopTimeoutSeconds {stop} leaves no time for the telemetry flush after {grace} s");
    for w in WORKERS {
        let name = format!("{}{}TaskDefinition", w[..1].to_uppercase(), &w[1..]);
        let container = &ecs["Resources"][&name]["Properties"]["ContainerDefinitions"][0];
        assert_eq!(container["StopTimeout"], "StopTimeoutSeconds", "{name}");
        assert_eq!(container["Command"], serde_json::json!([w]), "{name} runs `portcullis-worker {w}`");
        let env = container["Environment"].as_array().expect("environment");
        let grace_env = env.iter().find(|e| e["Name"] == "PORTCULLIS__WORKER__SHUTDOWN_GRACE_SECONDS");
        assert_eq!(grace_env.map(|e| &e["Value"]), Some(&Value::from("ShutdownGraceSeconds")), "{name}");
    }
}

#[test]
fn each_ecs_service_runs_as_its_worker_role_and_scales_on_its_own_queue() {
    let ecs = template("infra/cloudformation/ecs.yaml");
    let stack = template("infra/cloudformation/portcullis.yaml");
    let names = StackNames::new("p");
    for (w, queue) in WORKERS.into_iter().zip([names.access_queue(), names.directory_queue(), names.posture_queue()]) {
        let cap = format!("{}{}", w[..1].to_uppercase(), &w[1..]);
        let task_role = sub(&ecs["Resources"][format!("{cap}TaskDefinition")]["Properties"]["TaskRoleArn"], "p");
        let role_name = sub(&stack["Resources"][format!("{cap}WorkerRole")]["Properties"]["RoleName"], "p");
        assert!(task_role.ends_with(&format!(":role/{role_name}")), "{cap}: task role {task_role} is not {role_name}");
        let metrics = &ecs["Resources"][format!("{cap}BacklogScaling")]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
            ["CustomizedMetricSpecification"]["Metrics"];
        let visible = metrics
            .as_array()
            .expect("metrics")
            .iter()
            .find(|m| m["Id"] == "visible")
            .unwrap_or_else(|| panic!("{cap}: no visible-messages metric"));
        let dims = &visible["MetricStat"]["Metric"]["Dimensions"][0];
        assert_eq!(dims["Name"], "QueueName");
        assert_eq!(sub(&dims["Value"], "p"), queue, "{cap} scales on its own queue");
    }
}

#[test]
fn each_lambda_function_runs_as_its_worker_role_on_its_own_queue_and_reports_item_failures() {
    let lambda = template("infra/cloudformation/lambda.yaml");
    let stack = template("infra/cloudformation/portcullis.yaml");
    let names = StackNames::new("p");
    for (w, queue) in WORKERS.into_iter().zip([names.access_queue(), names.directory_queue(), names.posture_queue()]) {
        let cap = format!("{}{}", w[..1].to_uppercase(), &w[1..]);
        let function = &lambda["Resources"][format!("{cap}Function")]["Properties"];
        let role = sub(&function["Role"], "p");
        let role_name = sub(&stack["Resources"][format!("{cap}WorkerRole")]["Properties"]["RoleName"], "p");
        assert!(role.ends_with(&format!(":role/{role_name}")), "{cap}: runs as {role}, not {role_name}");
        assert_eq!(
            function["ImageConfig"]["Command"],
            serde_json::json!(["lambda", w]),
            "`portcullis-worker lambda {w}`"
        );
        let mapping = &lambda["Resources"][format!("{cap}Queue")]["Properties"];
        assert!(sub(&mapping["EventSourceArn"], "p").ends_with(&format!(":{queue}")), "{cap} reads its own queue");
        assert_eq!(mapping["FunctionResponseTypes"], serde_json::json!(["ReportBatchItemFailures"]), "{cap}");
        assert!(mapping["BatchSize"].as_i64().is_some_and(|b| (1..=10).contains(&b)), "{cap}: a batch is one receive");
        // The timed work: a schedule that may invoke this function.
        let schedule = &lambda["Resources"][format!("{cap}Schedule")]["Properties"];
        assert_eq!(schedule["Targets"][0]["Arn"], Value::from(format!("{cap}Function.Arn")), "{cap}");
        let permission = &lambda["Resources"][format!("{cap}SchedulePermission")]["Properties"];
        assert_eq!(permission["Principal"], "events.amazonaws.com");
        assert_eq!(permission["SourceArn"], Value::from(format!("{cap}Schedule.Arn")));
        // Logs go to the function's own group, which only its role may write.
        let logs = &lambda["Resources"][format!("{cap}LogsPolicy")]["Properties"];
        assert_eq!(sub(&logs["Roles"][0], "p"), role_name, "{cap}");
    }
    // A message must not become visible again while its invocation runs: the longest timeout the
    // template allows is at most every queue's visibility timeout.
    let longest = lambda["Parameters"]["TimeoutSeconds"]["MaxValue"].as_i64().expect("a bound");
    let queues: Vec<i64> = stack["Resources"]
        .as_object()
        .expect("resources")
        .values()
        .filter(|r| r["Type"] == "AWS::SQS::Queue")
        .filter_map(|r| r["Properties"]["VisibilityTimeout"].as_i64())
        .collect();
    assert!(!queues.is_empty() && queues.iter().all(|v| *v >= longest), "{longest} s against {queues:?}");
}

#[test]
fn member_account_roles_trust_only_the_central_worker_roles() {
    let member = template("infra/cloudformation/member-account.yaml");
    let stack = template("infra/cloudformation/portcullis.yaml");
    let role_name = |id: &str| sub(&stack["Resources"][id]["Properties"]["RoleName"], "p");
    let trusted = |id: &str| -> Vec<String> {
        let statements = member["Resources"][id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            .as_array()
            .expect("statements")
            .clone();
        assert_eq!(statements.len(), 1, "{id}: one trust statement");
        match &statements[0]["Principal"]["AWS"] {
            Value::Array(a) => a.iter().map(|v| sub(v, "p")).collect(),
            v => vec![sub(v, "p")],
        }
    };
    let central = |role: String| format!("arn:${{AWS::Partition}}:iam::${{CentralAccountId}}:role/{role}");
    assert_eq!(trusted("BrokerRole"), [central(role_name("AccessWorkerRole"))]);
    assert_eq!(trusted("PostureReadRole"), [central(role_name("PostureWorkerRole"))]);
    assert_eq!(
        trusted("RevokerRole"),
        [central(role_name("AccessWorkerRole")), central(role_name("DirectoryWorkerRole"))]
    );
    // The names the central workers' policies may assume.
    assert_eq!(
        sub(&member["Resources"]["BrokerRole"]["Properties"]["RoleName"], "p"),
        StackNames::new("p").broker_role()
    );
}

/// `%2F` and friends, as IAM returns policy documents.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()),
        ) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn the_stack_creates_a_role_per_worker_and_delete_keeps_what_holds_data() {
    let moto = portcullis_tests::Moto::start();
    let sdk = portcullis_tests::sdk_config(&moto.endpoint).await;
    let prefix = portcullis_tests::random_prefix();
    let names = StackNames::new(&prefix);
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let iam = aws_sdk_iam::Client::new(&sdk);
    let mut events = Vec::new();
    let status = portcullis_cli::stack::deploy_with_progress(
        &cfn,
        &prefix,
        portcullis_cli::stack::TEMPLATE,
        &[("Prefix", &prefix)],
        std::time::Duration::from_secs(60),
        &mut |e| events.push(e.clone()),
    )
    .await
    .expect("the stack deploys without WorkerPrincipalArn");
    assert_eq!(status, "CREATE_COMPLETE");
    assert!(events.iter().any(|e| e.status == "CREATE_COMPLETE"), "progress is reported from the events: {events:?}");

    // Without WorkerPrincipalArn: a role per worker, and the broker trusts the access worker's only.
    for w in WORKERS {
        iam.get_role().role_name(format!("{prefix}-{w}-worker")).send().await.expect("the worker role exists");
    }
    let broker = iam.get_role().role_name(names.broker_role()).send().await.expect("the broker role");
    let trust = percent_decode(broker.role.and_then(|r| r.assume_role_policy_document).as_deref().unwrap_or_default());
    let trust: Value = serde_json::from_str(&trust).expect("a JSON trust policy");
    assert_eq!(
        trust["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::123456789012:role/{prefix}-access-worker"),
        "{trust}"
    );

    let status = portcullis_cli::stack::delete(&cfn, &prefix, std::time::Duration::from_secs(60), &mut |_| {})
        .await
        .expect("the stack deletes");
    assert_eq!(status, "DELETE_COMPLETE");
    assert!(iam.get_role().role_name(names.broker_role()).send().await.is_err(), "the roles go with the stack");
    // DeletionPolicy: Retain keeps the data.
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    dynamodb.describe_table().table_name(names.table()).send().await.expect("the state table is kept");
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for queue in [names.access_queue(), names.access_dlq(), names.posture_dlq(), names.directory_dlq()] {
        sqs.get_queue_url().queue_name(&queue).send().await.unwrap_or_else(|e| panic!("{queue} is kept: {e:?}"));
    }
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    events.describe_archive().archive_name(format!("{prefix}-violations")).send().await.expect("the archive is kept");
    // Deleting what is gone succeeds.
    let again = portcullis_cli::stack::delete(&cfn, &prefix, std::time::Duration::from_secs(60), &mut |_| {}).await;
    assert_eq!(again.expect("a second delete succeeds"), "DELETE_COMPLETE");
}

/// A member account forwards every change event the central posture rules react to: each `source`
/// and CloudTrail `eventSource` a central API-call rule names is in the member forwarding rule, so
/// adding a control's rule without forwarding it from member accounts fails here.
#[test]
fn member_accounts_forward_every_source_the_central_rules_react_to() {
    let central = template("infra/cloudformation/portcullis.yaml");
    let member = template("infra/cloudformation/member-account.yaml");
    let forward = &member["Resources"]["ForwardApiCallsRule"]["Properties"]["EventPattern"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    let (sources, event_sources) = (strings(&forward["source"]), strings(&forward["detail"]["eventSource"]));
    let mut checked = 0;
    for (name, resource) in central["Resources"].as_object().expect("resources") {
        let pattern = &resource["Properties"]["EventPattern"];
        if resource["Type"] != "AWS::Events::Rule"
            || !strings(&pattern["detail-type"]).iter().any(|t| t == "AWS API Call via CloudTrail")
        {
            continue;
        }
        for s in strings(&pattern["source"]) {
            assert!(sources.contains(&s), "{name}: member accounts do not forward source {s}");
            checked += 1;
        }
        for s in strings(&pattern["detail"]["eventSource"]) {
            assert!(event_sources.contains(&s), "{name}: member accounts do not forward eventSource {s}");
        }
    }
    assert!(checked >= 15, "the central rules were read ({checked} sources checked)");
}
