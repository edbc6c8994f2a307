"""Reproduce the paper in one command: ``hf-robustmed reproduce -o DIR`` (or ``accelerate launch -m
hf_robustmed.reproduce -o DIR`` on one or several GPUs).

The whole study of Imam, Marew, Yaqub (MIUA 2025) from the clean sources: the 12 datasets fetched and verified,
RobustMedCLIP trained with the paper's recipe, the authors' checkpoints converted where they can be fetched, CLIP,
MedCLIP, BiomedCLIP, UniMed-CLIP and the adapters evaluated zero-shot under the ``standard`` and ``rmc`` protocols
with the corruptions made on the fly, and the paper's table (``paper_table.md``/``.csv``) with ours beside it.
``--dry-run`` prints the plan (downloads and sizes, disk, image-evaluations, training steps, a time estimate
measured on this machine) and fetches nothing. Every step is resumable (see :mod:`hf_robustmed.reproduce.run`).

Modules: :mod:`.study` (what the study is), :mod:`.plan` (the dry run), :mod:`.run` (the steps), :mod:`.table`
(the outputs), :mod:`.cli` (the command). Importing this package is light; the names below load on first use.
"""

from importlib import import_module

_EXPORTS = {
    "Study": "study",
    "RmcRun": "study",
    "BASELINES": "study",
    "COLLECTIONS": "study",
    "count": "plan",
    "describe": "plan",
    "downloads": "plan",
    "measure": "plan",
    "run_study": "run",
    "write_outputs": "table",
    "add_arguments": "cli",
    "study_from_args": "cli",
    "main": "cli",
}
__all__ = [
    "BASELINES",
    "COLLECTIONS",
    "RmcRun",
    "Study",
    "add_arguments",
    "count",
    "describe",
    "downloads",
    "main",
    "measure",
    "run_study",
    "study_from_args",
    "write_outputs",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
