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

And its transactions roll back only the items they name (see `_transact_write_items`).
"""

import copy
import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.server import main

_LOCK = threading.RLock()


# moto's `transact_write_items` deep-copies every table the transaction touches, once per item,
# to roll back on failure: a call costs O(table size x items), so a benchmark or a load run slows
# down as its table fills, and a transaction with condition checks costs more than the writes it
# guards. Here it saves only the items the transaction names and restores those on failure (the
# whole backend runs under one lock, so nothing else changes them meanwhile). Same results, same
# errors; only the cost of the rollback copy changes.
_TRANSACT = threading.local()
_table_deepcopy_default = getattr(Table, "__deepcopy__", None)


def _table_deepcopy(self, memo):
    if getattr(_TRANSACT, "active", False):
        return self  # the transaction's own rollback below restores what it changed
    if _table_deepcopy_default is not None:
        return _table_deepcopy_default(self, memo)
    result = self.__class__.__new__(self.__class__)
    memo[id(self)] = result
    for name, value in self.__dict__.items():
        setattr(result, name, copy.deepcopy(value, memo))
    return result


Table.__deepcopy__ = _table_deepcopy

_moto_transact_write_items = DynamoDBBackend.transact_write_items


def _named_item(backend, entry):
    """(table, hash, range) of the item one transaction entry names, or None."""
    if not isinstance(entry, dict) or len(entry) != 1:
        return None
    op_type, op = next(iter(entry.items()))
    if not isinstance(op, dict):
        return None
    table = backend.tables.get(op.get("TableName"))
    attrs = op.get("Item") if op_type == "Put" else op.get("Key")
    if table is None or not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
        return None
    hash_value = DynamoType(attrs[table.hash_key_attr])
    range_value = None
    if table.range_key_attr is not None:
        if table.range_key_attr not in attrs:
            return None
        range_value = DynamoType(attrs[table.range_key_attr])
    return table, hash_value, range_value


def _current(table, hash_value, range_value):
    if range_value is None:
        return table.items.get(hash_value) if hash_value in table.items else None
    return table.items[hash_value].get(range_value) if hash_value in table.items else None


def _restore(table, hash_value, range_value, item):
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
        return
    if item is None:
        if hash_value in table.items:
            table.items[hash_value].pop(range_value, None)
            if not table.items[hash_value]:
                table.items.pop(hash_value, None)
    else:
        table.items[hash_value][range_value] = item


def _transact_write_items(self, transact_items):
    saved = []
    for entry in transact_items or []:
        named = _named_item(self, entry)
        if named is not None:
            saved.append((*named, copy.deepcopy(_current(*named))))
    _TRANSACT.active = True
    try:
        return _moto_transact_write_items(self, transact_items)
    except BaseException:
        for table, hash_value, range_value, item in reversed(saved):
            _restore(table, hash_value, range_value, item)
        raise
    finally:
        _TRANSACT.active = False


_transact_write_items.__doc__ = _moto_transact_write_items.__doc__
DynamoDBBackend.transact_write_items = _transact_write_items


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
