"""The Jupyter server extension's REST API on a temporary root holding copies of shipped samples."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("jupyter_server")
from tornado.httpclient import HTTPClientError  # noqa: E402

from tests.conftest import SAMPLES  # noqa: E402

pytest_plugins = ("pytest_jupyter.jupyter_server",)

AMD = "public/mi250_minitoy_train_ROCm6_2_kineto.json.gz"


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"workbench.server": True}}}


@pytest.fixture
def jp_root_dir(tmp_path):
    """A root with a single trace, a rank folder, a hang and a memory folder, a README, and a link out."""
    root = tmp_path / "root"
    for relative in (AMD, "public/sampled_2of128_ranks", "nccl_cpu/missing", "h100/oom_capacity"):
        source, target = SAMPLES / relative, root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    (root / "notes.md").write_text("not an artifact\n")
    (tmp_path / "secret").mkdir()
    shutil.copy(SAMPLES / AMD, tmp_path / "secret" / "outside.json.gz")
    (root / "escape").symlink_to(tmp_path / "secret")
    return root


async def get_json(jp_fetch, endpoint, **params):
    response = await jp_fetch("workbench", "api", endpoint, params=params)
    return response.code, json.loads(response.body)


async def test_listing_names_each_artifact_once(jp_fetch):
    code, body = await get_json(jp_fetch, "artifacts")
    assert code == 200
    rows = {a["path"]: (a["kind"], a["folder"], a["files"], a["status"]["state"]) for a in body["artifacts"]}
    assert rows == {
        AMD: ("kineto_trace", False, 1, "not_analyzed"),
        "public/sampled_2of128_ranks": ("kineto_trace_ranks", True, 2, "not_analyzed"),
        "nccl_cpu/missing": ("flight_recorder", True, 6, "not_analyzed"),
        "h100/oom_capacity": ("memory", True, 3, "not_analyzed"),
    }


async def test_report_is_the_cli_json_and_is_cached(jp_fetch, jp_root_dir):
    code, report = await get_json(jp_fetch, "report", path=AMD)
    cli = subprocess.run([sys.executable, "-m", "workbench", "analyze", AMD, "--format", "json"],
                         cwd=jp_root_dir, capture_output=True, text=True, check=True)
    assert code == 200
    assert report == json.loads(cli.stdout)
    assert [(f["id"], f["severity"]) for f in report["findings"]] == [
        ("launch-bound", "critical"), ("low-gpu-utilization", "warning")]
    _, status = await get_json(jp_fetch, "status", path=AMD)
    assert status["status"]["state"] == "done"
    assert status["status"]["findings"] == {"critical": 1, "warning": 1, "info": 0}
    _, listing = await get_json(jp_fetch, "artifacts")
    assert next(a for a in listing["artifacts"] if a["path"] == AMD)["status"]["state"] == "done"
    os.utime(jp_root_dir / AMD, ns=(0, 0))  # a changed file is no longer analyzed
    _, status = await get_json(jp_fetch, "status", path=AMD)
    assert status["status"] == {"state": "not_analyzed"}


async def test_analyze_starts_and_reports_progress(jp_fetch):
    response = await jp_fetch("workbench", "api", "analyze", method="POST", body="", params={"path": "nccl_cpu/missing"})
    assert response.code in (200, 202)
    assert json.loads(response.body)["status"]["state"] in ("running", "done")
    _, report = await get_json(jp_fetch, "report", path="nccl_cpu/missing")
    assert [f["id"] for f in report["findings"]] == ["nccl-rank-missing"]
    _, status = await get_json(jp_fetch, "status", path="nccl_cpu/missing")
    assert status["status"]["findings"]["critical"] == 1


async def test_unreadable_artifact_is_a_422_with_the_input_error(jp_fetch):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch("workbench", "api", "report", params={"path": "notes.md"})
    assert error.value.code == 422
    assert json.loads(error.value.response.body)["message"].startswith("notes.md: unrecognized file")


@pytest.mark.parametrize("path", ["../secret/outside.json.gz", "escape/outside.json.gz", "/../secret",
                                  "public/../../secret", "escape"])
async def test_paths_outside_the_root_are_refused(jp_fetch, path):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch("workbench", "api", "report", params={"path": path})
    assert error.value.code == 403


async def test_links_out_of_the_root_are_not_listed(jp_fetch):
    _, body = await get_json(jp_fetch, "artifacts")
    assert not [a for a in body["artifacts"] if a["path"].startswith("escape")]


@pytest.mark.parametrize("endpoint", ["artifacts", "status", "report"])
async def test_every_endpoint_requires_authentication(jp_fetch, endpoint):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch("workbench", "api", endpoint, params={"path": AMD}, headers={"Authorization": ""})
    assert error.value.code == 403


async def test_post_requires_authentication(jp_fetch):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch("workbench", "api", "analyze", method="POST", body="", params={"path": AMD},
                       headers={"Authorization": ""})
    assert error.value.code == 403


@pytest.mark.parametrize("path", ["nope.json", "/etc/passwd"])  # paths are relative to the root, even with a '/'
async def test_missing_file_is_a_404(jp_fetch, path):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch("workbench", "api", "status", params={"path": path})
    assert error.value.code == 404
