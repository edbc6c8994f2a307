"""The README as a new user meets it: `hf-robustmed demo`, then every one-liner marked to run on its outputs.

Blocks preceded by ``<!-- runs-on-demo -->`` run in order, as written, in one shell whose working directory holds
the demo's ``demo_out/`` (and the repository's ``spaces/``); a block marked ``<!-- runs-on-demo: server -->`` starts
a server, which must answer on ``GRADIO_SERVER_PORT`` before it is stopped.
"""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require

require("peft")
require("gradio")

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- runs-on-demo(?:: (?P<kind>\w+))? -->\s*```(?P<lang>\w+)\n(?P<code>.*?)```", re.S)


def readme_blocks() -> list[tuple[str, str, str]]:
    return [(m["kind"] or "", m["lang"], m["code"]) for m in BLOCK.finditer((ROOT / "README.md").read_text())]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def script(blocks: list[tuple[str, str, str]], port: int) -> str:
    lines = ["set -euo pipefail"]
    for i, (kind, lang, code) in enumerate(blocks):
        lines.append(f"echo '--- README block {i + 1} ({lang}{', ' + kind if kind else ''})'")
        if lang == "python":
            lines += ["python - <<'PYTHON'", code.rstrip(), "PYTHON"]
        elif kind == "server":
            lines += [
                f"( {code.strip()} ) > server.log 2>&1 &",
                "server=$!",
                f"for _ in $(seq 120); do curl -sf http://127.0.0.1:{port}/ >/dev/null && break; sleep 1; done",
                f"curl -sf http://127.0.0.1:{port}/ >/dev/null || {{ cat server.log; exit 1; }}",
                "kill $server; wait $server || true",
            ]
        else:
            lines.append(code.rstrip())
    return "\n".join(lines) + "\n"


def test_readme_marks_the_one_liners():
    code = "\n".join(code for _, _, code in readme_blocks())
    for needle in (
        "load_dataset(",
        "PeftModel.from_pretrained(",
        "evaluate.load(",
        "accelerate launch -m hf_robustmed.evaluation",
        "accelerate launch -m hf_robustmed.adaptation.train",
        "spaces/robustmedclip-demo/app.py",
    ):
        assert needle in code, f"no README one-liner runs {needle!r} on the demo's outputs"


@pytest.mark.slow
def test_demo_then_every_readme_one_liner(tmp_path):
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HF_HOME": str(tmp_path / "hf"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_SERVER_PORT": str(port := free_port()),
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
        "MPLBACKEND": "Agg",
    }
    env.pop("HF_HUB_CACHE", None)
    env.pop("HF_HUB_OFFLINE", None)
    (tmp_path / "spaces").symlink_to(ROOT / "spaces")
    done = subprocess.run(
        [sys.executable, "-m", "hf_robustmed.cli", "demo", "-o", "demo_out"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "STAND-INS" in done.stdout  # said plainly
    out = tmp_path / "demo_out"
    report = (out / "report.md").read_text()
    assert "Stand-in weights" in report and "## Leaderboard" in report and "robustmedclip-standin" in report
    for figure in ("accuracy_vs_severity.png", "mce_per_corruption.png", "gallery_medimeta_c.png"):
        assert (out / figure).stat().st_size > 10_000
        assert f"]({figure})" in report
    (tmp_path / "readme.sh").write_text(script(readme_blocks(), port))
    done = subprocess.run(["bash", "readme.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
