"""The text report in a terminal: its width, colour, names cut from the middle, gains by unit."""

from __future__ import annotations

import io
import json

import pytest

from tests.conftest import NAIVE, OOM_CAPACITY, SYNTHETIC
from workbench.cli import main
from workbench.reporters import markdown, text
from workbench.reporters.common import shorten
from workbench.units import format_bytes


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("reports")
    out = {}
    for name, path in (("naive", NAIVE), ("oom", OOM_CAPACITY),
                       ("growth", SYNTHETIC / "kv_cache_growth.synthetic.snapshot.pickle.gz")):
        assert main(["analyze", str(path), "--format", "json", "-o", str(folder / name)]) == 0
        out[name] = json.loads((folder / name).read_text())
    return out


def widths(output: str) -> int:
    return max(len(line) for line in output.splitlines())


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_the_report_fits_the_width_columns_asks_for(capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["analyze", str(NAIVE)]) == 0
    out = capsys.readouterr().out
    assert widths(out) <= columns and "\x1b[" not in out  # captured stdout is not a TTY: plain
    kernels = [line for line in out.splitlines() if "│    57 │" in line]
    assert len(kernels) == 2 and all("…" in k or columns >= 160 for k in kernels)  # one line per row
    assert any("nn_align1" in k for k in kernels)  # the distinguishing suffix stays


def test_piped_without_columns_is_120_wide_and_plain(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert text.terminal(io.StringIO()) == {"width": text.PIPED_WIDTH, "color": False}
    main(["analyze", str(NAIVE)])
    assert widths(capsys.readouterr().out) == text.PIPED_WIDTH


def test_colour_on_a_tty_unless_no_color(monkeypatch, reports):
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert text.terminal(Tty()) == {"width": 100, "color": True}
    coloured = text.render(reports["naive"], **text.terminal(Tty()))
    assert "\x1b[1;31mcritical" in coloured  # critical in bold red
    monkeypatch.setenv("NO_COLOR", "1")
    assert text.terminal(Tty())["color"] is False


def test_names_are_cut_from_the_middle():
    name = "void cutlass::Kernel2<cutlass_80_simt_sgemm_256x128_8x4_nn_align1>(Params)"
    short = shorten(name, 40)
    assert len(short) == 40 and short.startswith("void cutlass::") and short.endswith("nn_align1>(Params)")


def test_a_failure_shows_what_its_fix_prevents_not_a_percentage(reports):
    out = text.render(reports["oom"], width=100)
    header = next(line for line in out.splitlines() if "Severity" in line)
    assert "Fix prevents" in header and "%" not in header and "Gain ms" not in header
    assert "the OOM that stopped the" in out and "100.0" not in out
    (finding,) = [f for f in reports["oom"]["findings"] if f["id"] == "oom-capacity"]
    assert finding["estimated_gain"]["prevents"] == "the OOM that stopped the run"


def test_gains_per_step_and_shares_are_columns_of_their_own(reports):
    out = text.render(reports["naive"], width=140)
    header = next(line for line in out.splitlines() if "Severity" in line)
    assert "Gain ms/step" in header and "Gain % of time" in header and "Fix prevents" not in header
    row = next(line for line in out.splitlines() if "fp32-matmul" in line and "│" in line)
    assert "│         38.1 │           43.2 │" in row  # 38.1 ms/step, 43.2 % of the step time


def test_a_memory_gain_is_shown_in_bytes_never_as_a_share_of_the_time(reports):
    (finding,) = reports["growth"]["findings"]
    gain = finding["estimated_gain"]
    assert "pct" not in gain and gain["memory_bytes"] > 0 and 0 < gain["memory_pct"] <= 100
    out = text.render(reports["growth"], width=140)
    header = next(line for line in out.splitlines() if "Severity" in line)
    assert "Gain memory" in header and "Gain % of memory" in header and "% of time" not in header
    row = next(line for line in out.splitlines() if "memory-growing-allocations" in line and "│" in line)
    assert f"{gain['memory_pct']:.1f}" in row and format_bytes(gain["memory_bytes"]) in row  # 1.86 GiB, 100.0
    assert "% of the time" not in markdown.render(reports["growth"])
    assert "of memory (" in markdown.render(reports["growth"])
