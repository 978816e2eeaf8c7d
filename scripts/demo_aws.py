"""Emulator-side steps of the `make run` demo (boto3 ships with moto in .venv).

    python scripts/demo_aws.py seed          # an account where every posture control passes (but IAM.9)
    python scripts/demo_aws.py stop-trail    # StopLogging, then the CloudTrail event EventBridge would deliver
    python scripts/demo_aws.py offboard USER # the HR system's user.offboarded event on the directory queue
    python scripts/demo_aws.py revocations   # the revocation policy on the broker role

Only for the local emulator: it talks to AWS_ENDPOINT_URL (default http://127.0.0.1:4566).
"""

import datetime
import json
import os
import re
import sys
import uuid

import boto3

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
TRAIL = "org-trail"
ACCOUNT = "123456789012"
BUCKET = "org-trail-logs"


def client(name):
    return boto3.client(name, endpoint_url=ENDPOINT, region_name=os.environ.get("AWS_REGION", "us-east-1"))


def s3control():
    """S3 Control puts the account id in front of the endpoint's host, which an emulator address
    cannot take: drop it before the request is signed (moto does not check signatures)."""
    cl = client("s3control")
    cl.meta.events.register(
        "before-sign.s3-control.*", lambda request, **kw: setattr(request, "url", re.sub(r"//\d{12}\.", "//", request.url))
    )
    return cl


def seed():
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    kms = client("kms")
    for key in kms.list_keys()["Keys"]:
        kms.enable_key_rotation(KeyId=key["KeyId"])
    key = kms.create_key(Description="payments data key")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    ct = client("cloudtrail")
    if not any(t["Name"] == TRAIL for t in ct.describe_trails()["trailList"]):
        ct.create_trail(
            Name=TRAIL, S3BucketName=BUCKET, IsMultiRegionTrail=True, EnableLogFileValidation=True, KmsKeyId=key["Arn"]
        )
    ct.start_logging(Name=TRAIL)
    gd = client("guardduty")
    if not gd.list_detectors()["DetectorIds"]:
        gd.create_detector(Enable=True)
    iam = client("iam")
    iam.update_account_password_policy(MinimumPasswordLength=14, PasswordReusePrevention=24)
    try:
        iam.create_user(UserName="ci-deployer")
        iam.create_access_key(UserName="ci-deployer")
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    s3control().put_public_access_block(
        AccountId=ACCOUNT,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    config = client("config")
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig",
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True},
        }
    )
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": BUCKET})
    config.start_configuration_recorder(ConfigurationRecorderName="default")
    ec2 = client("ec2")
    ec2.enable_ebs_encryption_by_default()
    for vpc in ec2.describe_vpcs()["Vpcs"]:
        ec2.create_flow_logs(
            ResourceType="VPC",
            ResourceIds=[vpc["VpcId"]],
            TrafficType="REJECT",
            LogDestinationType="s3",
            LogDestination=f"arn:aws:s3:::{BUCKET}",
        )
    for group in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]:
        if group["IpPermissionsEgress"]:
            ec2.revoke_security_group_egress(GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"])
        if group["IpPermissions"]:
            ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
    print(
        "seeded: trail org-trail (logging, multi-region, validated, encrypted), GuardDuty, rotating KMS keys, "
        "user ci-deployer, password policy, S3 Block Public Access, AWS Config, EBS encryption, flow logs, "
        "closed default security groups"
    )


def stop_trail():
    client("cloudtrail").stop_logging(Name=TRAIL)
    detail = {
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging",
        "requestParameters": {"name": TRAIL},
        "userIdentity": {"type": "IAMUser", "userName": "mallory"},
    }
    client("events").put_events(
        Entries=[{"Source": "aws.cloudtrail", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(detail)}]
    )
    print("mallory stopped trail org-trail; CloudTrail's StopLogging event is on the default bus")


PREFIX = os.environ.get("PORTCULLIS__STACK__PREFIX", "portcullis-local")


def offboard(user):
    """What an HR system sends (as a configured producer) when someone leaves, and the worker's reply."""
    sqs = client("sqs")
    queue = sqs.get_queue_url(QueueName=f"{PREFIX}-directory-events")["QueueUrl"]
    reply = sqs.create_queue(QueueName=f"{PREFIX}-reply-hr-demo")["QueueUrl"]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    message_id = str(uuid.uuid4())
    event = {"version": 1, "message_id": message_id, "kind": "user.offboarded", "sent_at": now, "reply_to": reply,
             "body": {"user": user, "effective_at": now}}
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))
    print(f"HR: user.offboarded for {user} on {PREFIX}-directory-events")
    for _ in range(30):
        for m in sqs.receive_message(QueueUrl=reply, WaitTimeSeconds=1).get("Messages", []):
            answer = json.loads(m["Body"])
            if answer.get("in_reply_to") == message_id:
                print(json.dumps(answer.get("result") or answer.get("error"), indent=2))
                sqs.delete_queue(QueueUrl=reply)
                return
    sys.exit("no reply from the directory worker")


def revocations():
    """The deny statements Portcullis keeps on the broker role."""
    doc = client("iam").get_role_policy(RoleName=f"{PREFIX}-broker", PolicyName="PortcullisRevocations")["PolicyDocument"]
    for s in doc["Statement"][1:]:
        who = s["Condition"].get("StringEquals", {}).get("aws:SourceIdentity", "everyone")
        print(f"Deny * for sessions of {who} issued before {s['Condition']['DateLessThan']['aws:TokenIssueTime']}")


if __name__ == "__main__":
    actions = {"seed": seed, "stop-trail": stop_trail, "offboard": offboard, "revocations": revocations}
    actions[sys.argv[1]](*sys.argv[2:])
