"""The Jupyter server extension's REST API on a temporary root holding copies of shipped samples."""

from __future__ import annotations

import asyncio
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


async def analyzed(jp_fetch, path):
    """POST analyze, wait for it to finish, then GET its report: (code, report)."""
    await jp_fetch("workbench", "api", "analyze", method="POST", body="", params={"path": path})
    for _ in range(1200):
        _, status = await get_json(jp_fetch, "status", path=path)
        if status["status"]["state"] != "running":
            break
        await asyncio.sleep(0.1)
    return await get_json(jp_fetch, "report", path=path)


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
    code, report = await analyzed(jp_fetch, AMD)
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
    _, report = await analyzed(jp_fetch, "nccl_cpu/missing")
    assert [f["id"] for f in report["findings"]] == ["nccl-rank-missing"]
    _, status = await get_json(jp_fetch, "status", path="nccl_cpu/missing")
    assert status["status"]["findings"]["critical"] == 1


async def test_unreadable_artifact_is_a_422_with_the_input_error(jp_fetch):
    with pytest.raises(HTTPClientError) as error:
        await analyzed(jp_fetch, "notes.md")
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


@pytest.fixture
def links_out(jp_root_dir):
    """A folder whose only trace is a link to one outside the root, and a hang folder with a log linked out."""
    outside = jp_root_dir.parent / "secret"
    (jp_root_dir / "d").mkdir()
    (jp_root_dir / "d" / "a.pt.trace.json.gz").symlink_to(outside / "outside.json.gz")
    (outside / "rank9.log").write_text("NCCL WARN secret outside the root\n")
    (jp_root_dir / "nccl_cpu" / "missing" / "rank9.log").symlink_to(outside / "rank9.log")
    return jp_root_dir


async def test_a_folder_with_a_link_out_reads_nothing_outside(jp_fetch, links_out):
    with pytest.raises(HTTPClientError) as error:
        await analyzed(jp_fetch, "d")
    assert error.value.code == 422
    assert "folder holds nothing" in json.loads(error.value.response.body)["message"]
    _, report = await analyzed(jp_fetch, "nccl_cpu/missing")
    assert "secret" not in json.dumps(report)
    _, listing = await get_json(jp_fetch, "artifacts")
    assert listing["skipped_links"] == 3  # escape, d/a.pt.trace.json.gz, nccl_cpu/missing/rank9.log
    assert "d" not in {a["path"] for a in listing["artifacts"]}


async def test_the_root_itself_is_analyzed_without_its_links_out(jp_fetch, links_out):
    _, report = await analyzed(jp_fetch, ".")
    assert "outside.json.gz" not in json.dumps(report) and "secret outside" not in json.dumps(report)
    assert not [i["path"] for i in report["inputs"] if i["path"].startswith(("escape", "d/", "d\\"))]


@pytest.mark.parametrize("path", ["", " ", "\0", "a\0b"])
async def test_an_empty_or_nul_path_is_a_400(jp_fetch, path):
    for endpoint, method in (("report", "GET"), ("status", "GET"), ("analyze", "POST")):
        with pytest.raises(HTTPClientError) as error:
            await jp_fetch("workbench", "api", endpoint, method=method, params={"path": path},
                           **({"body": ""} if method == "POST" else {}))
        assert error.value.code == 400


async def test_get_report_never_starts_an_analysis(jp_fetch):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch("workbench", "api", "report", params={"path": AMD})
    assert error.value.code == 409
    assert "POST /workbench/api/analyze" in json.loads(error.value.response.body)["message"]
    _, status = await get_json(jp_fetch, "status", path=AMD)
    assert status["status"] == {"state": "not_analyzed"}


async def test_a_frozen_log_sniff_does_not_freeze_the_listing(jp_fetch, jp_root_dir):
    """The issue's repro: 3.5 MB of '[E1234 x' once held the GIL in a super-linear regex for minutes."""
    (jp_root_dir / "rank0.log").write_bytes(b"[E1234 x" * 500000)
    (jp_root_dir / "rank1.log").write_bytes(b"NCCL WARN x\n" + b" " * 1_000_000)
    code, _ = await asyncio.wait_for(get_json(jp_fetch, "artifacts"), 60)
    assert code == 200
