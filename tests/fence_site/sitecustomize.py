"""Test-only: deletes one library attribute when a server process starts.

tests/test_writer_fence_live.py puts this directory first on PYTHONPATH and names the
attribute in RACEWEB_TEST_REMOVE_INTERNAL as `module:Owner.attribute`, so the server runs
as it would on a library version that no longer has it. Nothing else imports this.
"""

import importlib
import os

_spec = os.environ.get("RACEWEB_TEST_REMOVE_INTERNAL")
if _spec:
    _module, _, _path = _spec.partition(":")
    _owner = importlib.import_module(_module)
    *_parents, _name = _path.split(".")
    for _parent in _parents:
        _owner = getattr(_owner, _parent)
    delattr(_owner, _name)
