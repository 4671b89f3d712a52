"""The restricted unpickler builds plain data and refuses everything else before calling it."""

from __future__ import annotations

import collections
import gzip
import os
import pickle

import pytest

from workbench.errors import InputError
from workbench.loaders.safe_pickle import RefusedPickle, load_file, loads


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/workbench-pwned",))


def test_plain_data_round_trips():
    data = {"segments": [{"address": 1, "blocks": [(1, 2.5, None, True)]}], "s": {1, 2}, "b": b"x",
            "o": collections.OrderedDict(a=1)}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert loads(pickle.dumps(data, protocol=protocol)) == data


def test_a_hostile_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = "/tmp/workbench-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    with pytest.raises(RefusedPickle, match="posix.system|os.system"):
        loads(pickle.dumps({"x": Exploit()}))
    assert not os.path.exists(marker)


def test_load_file_names_the_file_and_says_unsafe(tmp_path):
    path = tmp_path / "snapshot.pickle.gz"
    path.write_bytes(gzip.compress(pickle.dumps([Exploit()])))
    with pytest.raises(InputError, match="unsafe pickle") as info:
        load_file(path)
    assert str(path) in str(info.value)


def test_load_file_rejects_garbage(tmp_path):
    path = tmp_path / "snapshot.pickle"
    path.write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(InputError, match="not a readable pickle"):
        load_file(path)
