import math

import numpy as np

from workbench.report import SCHEMA, build_report, to_plain


def test_to_plain_unwraps_numpy_and_drops_non_finite_numbers():
    value = {"a": np.int64(3), "b": np.float32(0.5), "c": [math.nan, math.inf, 1.234567891], 4: (True, None)}
    assert to_plain(value) == {"a": 3, "b": 0.5, "c": [None, None, 1.2346], "4": [True, None]}


def test_empty_report_has_the_contract_keys():
    report = build_report([])
    assert report["schema"] == SCHEMA == "workbench.report/1"
    assert report["inputs"] == [] and report["findings"] == []
    assert report["tool"]["name"] == "workbench"
