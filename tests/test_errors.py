"""Errors the user can fix end the command line with status 2 and one line naming the problem, leaving nothing
half-made; bugs keep their traceback (and ``HF_ROBUSTMED_DEBUG=1`` shows every traceback)."""

import errno
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_robustmed import cli
from hf_robustmed.cli import main
from hf_robustmed.metrics import RESULT_COLUMNS


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert lines[0].startswith("hf-robustmed: error: ")
    return lines[0]


def run_cli(*argv: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    environment.pop("HF_ROBUSTMED_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "hf_robustmed.cli", *argv],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def results_file(tmp_path) -> Path:
    rows = [
        (m, "d", c, s, "accuracy", a, 10)
        for m, shift in (("ref", 0.0), ("m", 0.1))
        for c, s, a in (("clean", 0, 0.9 - shift), ("blur", 1, 0.7 - shift), ("blur", 2, 0.5 - shift))
    ]
    path = tmp_path / "results.csv"
    pd.DataFrame(rows, columns=list(RESULT_COLUMNS)).to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------------------------------- the Hub


def test_offline_push_is_one_line_and_changes_nothing(tmp_path):
    folder = tmp_path / "bench"
    folder.mkdir()
    manifest = {
        "name": "bench",
        "complete": True,
        "settings": {"seed": 0, "grey": "native", "shard_rows": 1000, "generator": "hf-robustmed test"},
        "seeding": "per sample",
        "datasets": {},
        "configs": {},
    }
    (folder / "benchmark.json").write_text(json.dumps(manifest))
    (folder / "README.md").write_text("the card as built\n")
    done = run_cli("push", str(folder), "someone/bench", cwd=tmp_path, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in line
    assert (folder / "README.md").read_text() == "the card as built\n", "the card is not re-rendered first"


def test_unreachable_hub_is_one_line(tmp_path, monkeypatch, capsys):
    import httpx
    from huggingface_hub import HfApi

    def no_network(*args, **kwargs):
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(HfApi, "create_repo", no_network)
    monkeypatch.delenv("HF_ROBUSTMED_DEBUG", raising=False)
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    assert main(["push", str(tmp_path / "adapter"), "someone/adapter"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "cannot reach the network (ConnectError: [Errno -3] Temporary failure" in line


def test_push_refuses_an_interrupted_build(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_ROBUSTMED_DEBUG", raising=False)
    (tmp_path / "bench" / ".staging").mkdir(parents=True)  # where a killed build leaves its shards
    assert main(["push", str(tmp_path / "bench"), "someone/bench"]) == 2
    assert "unfinished build" in one_error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------------------------------- data


def corrupt_deflate_npz(path: Path) -> Path:
    """A MedMNIST-style npz whose ``test_images`` deflate stream starts with an invalid block type."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 8), ("val", 4), ("test", 12)):
        arrays[f"{split}_images"] = (rng.integers(0, 255, (n, 28, 28)) // 16 * 16).astype(np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(-1, 1).astype(np.uint8)
    np.savez_compressed(path, **arrays)
    offset = zipfile.ZipFile(path).getinfo("test_images.npy").header_offset
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[offset + 26 : offset + 30])
    data[offset + 30 + name_length + extra_length] = 0xFF  # BFINAL=1, BTYPE=11: invalid
    path.write_bytes(bytes(data))
    return path


def test_a_corrupt_deflate_stream_in_an_npz_is_one_line(tmp_path):
    corrupt_deflate_npz(tmp_path / "breastmnist.npz")
    done = run_cli(
        "build",
        "medmnist-c",
        "--source-root",
        ".",
        "--datasets",
        "breastmnist",
        "--size",
        "28",
        "--corruptions",
        "pixelate",
        "--severities",
        "1",
        "--splits",
        "test",
        "-o",
        "out",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "breastmnist.npz" in line and "corrupt" in line and "zlib" not in done.stderr.lower()
    assert not (tmp_path / "out").exists(), "nothing half-made"


# --------------------------------------------------------------------------------------------------- disks


@pytest.mark.parametrize(
    "code,words", [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")]
)
def test_a_full_or_read_only_output_folder_is_one_line_and_leaves_nothing(
    tmp_path, results_file, monkeypatch, capsys, code, words
):
    import hf_robustmed.report as report

    def refused(fig, path):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(report, "render_png", refused)
    monkeypatch.delenv("HF_ROBUSTMED_DEBUG", raising=False)
    out = tmp_path / "report"
    assert main(["report", str(results_file), "-o", str(out), "--reference", "ref"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert words in line and str(out) in line
    assert not out.exists(), "no half-written report"


def test_a_read_only_disk_for_a_single_image(tmp_path, monkeypatch, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "in.png")

    mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.is_relative_to(tmp_path / "out"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    monkeypatch.delenv("HF_ROBUSTMED_DEBUG", raising=False)
    assert (
        main(["corrupt", str(tmp_path / "in.png"), str(tmp_path / "out" / "x.png"), "-c", "pixelate", "-s", "1"]) == 2
    )
    assert "Read-only file system" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out" / "x.png").exists()


# --------------------------------------------------------------------------------------------------- the rule


def test_multi_line_messages_become_one_line(monkeypatch, capsys):
    def bad(args):
        raise ValueError("first part\n  second part")

    monkeypatch.setitem(cli._COMMANDS, "suites", (*cli._COMMANDS["suites"][:2], bad))
    monkeypatch.delenv("HF_ROBUSTMED_DEBUG", raising=False)
    assert main(["suites"]) == 2
    assert one_error_line(capsys.readouterr().err) == "hf-robustmed: error: first part second part"


def test_a_missing_extra_is_one_line(monkeypatch, capsys):
    def missing(args):
        raise ImportError("the figures need matplotlib: pip install 'hf-robustmed[viz]'")

    monkeypatch.setitem(cli._COMMANDS, "suites", (*cli._COMMANDS["suites"][:2], missing))
    monkeypatch.delenv("HF_ROBUSTMED_DEBUG", raising=False)
    assert main(["suites"]) == 2
    assert "pip install 'hf-robustmed[viz]'" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "bug", [KeyError("x"), TypeError("bad call"), OSError(errno.EIO, "I/O error"), AttributeError("no attribute")]
)
def test_bugs_keep_their_traceback(monkeypatch, bug):
    def broken(args):
        raise bug

    monkeypatch.setitem(cli._COMMANDS, "suites", (*cli._COMMANDS["suites"][:2], broken))
    with pytest.raises(type(bug)):
        main(["suites"])


def test_debug_shows_the_traceback_of_user_errors(monkeypatch, results_file, tmp_path):
    monkeypatch.setenv("HF_ROBUSTMED_DEBUG", "1")
    with pytest.raises(ValueError, match="reference model 'nope'"):
        main(["report", str(results_file), "-o", str(tmp_path / "r"), "--reference", "nope"])
    done = run_cli("report", str(results_file), "-o", str(tmp_path / "r"), "--reference", "nope", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    one_error_line(done.stderr)
