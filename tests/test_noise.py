"""What the library says on its own (issue #12, item 11): nothing on import, one condensed warning per cause."""

import subprocess
import sys
import warnings

import pandas as pd
from conftest import require

from hf_robustmed.metrics import RESULT_COLUMNS, UndefinedMetricWarning


def _results(datasets: int = 6) -> pd.DataFrame:
    """The reference is perfect on every corrupted cell of half the datasets: CE undefined on those pairs."""
    rows = []
    for model, (clean, corrupted) in {"ref": (0.2, 0.4), "other": (0.1, 0.3)}.items():
        for d in range(datasets):
            for corruption in ("blur", "noise"):
                wrong = 0.0 if model == "ref" and d % 2 else corrupted
                rows += [(model, f"d{d}", corruption, s, "accuracy", 1 - wrong, 50) for s in range(1, 6)]
            rows.append((model, f"d{d}", "clean", 0, "accuracy", 1 - clean, 50))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def test_importing_the_library_prints_nothing():
    modules = [
        "hf_robustmed",
        "hf_robustmed.cli",
        "hf_robustmed.report",
        "hf_robustmed.figures",
        "hf_robustmed.corruptions",
        "hf_robustmed.metrics",
        "hf_robustmed.data",
    ]
    done = subprocess.run(
        [sys.executable, "-c", "; ".join(f"import {m}" for m in modules)], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


def test_a_report_warns_once_per_cause_with_a_count(tmp_path):
    require("matplotlib")
    from hf_robustmed.report import write_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_report(_results(), tmp_path / "report", reference="ref")
    undefined = [str(w.message) for w in caught if issubclass(w.category, UndefinedMetricWarning)]
    causes = [message.split(" undefined for ")[0] for message in undefined]
    assert len(causes) == len(set(causes)) >= 1, undefined  # one warning per cause, not one per figure or cell
    ce = next(m for m in undefined if m.startswith("CE undefined"))
    assert "d1/blur, d1/noise, d3/blur and 3 more (6 cells in all; reference 'ref'" in ce
