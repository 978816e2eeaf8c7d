#!/bin/bash
# LocalStack ready hook (mounted at /etc/localstack/init/ready.d by docker-compose.yml).
# It creates nothing on purpose: `portcullis stack deploy` builds every resource through the
# CloudFormation API, the same path as on AWS. This only says what to do next.
set -euo pipefail
echo "portcullis: LocalStack is ready on 127.0.0.1:4566."
echo "portcullis: next, on the host: AWS_ACCESS_KEY_ID=123456789012 AWS_SECRET_ACCESS_KEY=test portcullis stack deploy (see localstack/README.md)."
