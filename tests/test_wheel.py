"""Installed from a wheel, away from the source tree, the library finds its card templates: the demo runs to the end."""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build_wheel(tmp_path: Path) -> Path:
    """A wheel of a copy of the project (building in the checkout would write build/ and egg-info there)."""
    source = tmp_path / "source"
    shutil.copytree(REPO / "hf_robustmed", source / "hf_robustmed", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path / "wheels"),
            str(source),
        ],
        check=True,
    )
    (wheel,) = (tmp_path / "wheels").glob("hf_robustmed-*.whl")
    return wheel


def fresh_venv(folder: Path) -> Path:
    """A virtual environment that sees this one's dependencies (a ``.pth`` line, no copies) but not its
    editable install of hf_robustmed (the ``.pth`` files of the dependency folder are not run); returns its python."""
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_demo_runs_from_a_wheel_install(tmp_path):
    wheel = build_wheel(tmp_path)
    python = fresh_venv(tmp_path / "venv")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    where = subprocess.run(
        [python, "-c", "import hf_robustmed; print(hf_robustmed.__file__)"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where
    demo = subprocess.run(
        [tmp_path / "venv" / "bin" / "hf-robustmed", "demo", "-o", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-4000:]
    assert (tmp_path / "demo" / "benchmark" / "README.md").is_file()
    assert (tmp_path / "demo" / "robustmedclip" / "training_summary.json").is_file()


def test_model_cards_are_the_packaged_templates():
    """``model_cards/`` shows the templates the library renders; one copy, so they cannot drift."""
    from hf_robustmed.templates import read_template

    packaged = sorted(p.name for p in (REPO / "hf_robustmed" / "templates").glob("*.md"))
    assert packaged == ["adapter_card.md", "dataset_card.md"]
    for name in packaged:
        link = REPO / "model_cards" / name
        assert link.is_symlink() and link.resolve() == (REPO / "hf_robustmed" / "templates" / name).resolve()
        assert link.read_text() == read_template(name)
