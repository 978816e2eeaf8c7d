"""moto_server, with its DynamoDB backend made atomic per call.

moto serves each request on its own thread, but its DynamoDB backend is not safe under concurrency:
`transact_write_items` deep-copies every table it touches, and when a condition fails it puts the
copies back, so a write another thread made in between (another transaction, a PutItem) is undone
after it was acknowledged. Real DynamoDB never loses an acknowledged write, and Portcullis's
idempotency rests on that: two deliveries of one request racing each other once made two grants
with two different answers here (a concurrent transaction's rollback erased the first grant).
Iterating a table while another thread changes it also fails with an HTML 500.

So every public method of the DynamoDB backend runs under one lock: calls are atomic, as DynamoDB's
are, and still concurrent with every other service. Everything else is moto's own server, with its
own arguments (`-H`, `-p`). The tests run this instead of `.venv/bin/moto_server`.
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.RLock()


def _atomic(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


for _name, _value in list(vars(DynamoDBBackend).items()):
    if not _name.startswith("_") and callable(_value):
        setattr(DynamoDBBackend, _name, _atomic(_value))

if __name__ == "__main__":
    sys.exit(main())
