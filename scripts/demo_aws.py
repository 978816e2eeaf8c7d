"""Emulator-side steps of the `make run` demo (boto3 ships with moto in .venv).

    python scripts/demo_aws.py seed          # a logging multi-region trail, GuardDuty, rotating KMS keys
    python scripts/demo_aws.py stop-trail    # StopLogging, then the CloudTrail event EventBridge would deliver

Only for the local emulator: it talks to AWS_ENDPOINT_URL (default http://127.0.0.1:4566).
"""

import json
import os
import sys

import boto3

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
TRAIL = "org-trail"


def client(name):
    return boto3.client(name, endpoint_url=ENDPOINT, region_name=os.environ.get("AWS_REGION", "us-east-1"))


def seed():
    s3 = client("s3")
    s3.create_bucket(Bucket="org-trail-logs")
    ct = client("cloudtrail")
    if not any(t["Name"] == TRAIL for t in ct.describe_trails()["trailList"]):
        ct.create_trail(Name=TRAIL, S3BucketName="org-trail-logs", IsMultiRegionTrail=True)
    ct.start_logging(Name=TRAIL)
    gd = client("guardduty")
    if not gd.list_detectors()["DetectorIds"]:
        gd.create_detector(Enable=True)
    kms = client("kms")
    for key in kms.list_keys()["Keys"]:
        kms.enable_key_rotation(KeyId=key["KeyId"])
    key = kms.create_key(Description="payments data key")["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key)
    iam = client("iam")
    try:
        iam.create_user(UserName="ci-deployer")
        iam.create_access_key(UserName="ci-deployer")
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    print("seeded: trail org-trail (logging, multi-region), GuardDuty detector, rotating KMS keys, user ci-deployer")


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


if __name__ == "__main__":
    {"seed": seed, "stop-trail": stop_trail}[sys.argv[1]]()
