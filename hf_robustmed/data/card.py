"""The dataset card (``README.md``) of a built benchmark, rendered from the packaged ``templates/dataset_card.md``."""

from __future__ import annotations

from pathlib import Path

from ..corruptions import describe_corruptions, format_param
from ..files import atomic_path
from ..templates import read_template
from .manifest import CARD, BenchmarkManifest

_GREY = {
    "native": "kept one-channel; corrupted as MedMNIST-C does (replicated to RGB, corrupted, converted back with "
    "Pillow's luma) or directly where that is provably the same",
    "rgb": "replicated to RGB before corrupting and stored as RGB (MediMeta-C's adopted handling)",
}


def write_card(out_dir: str | Path, repo_id: str | None = None) -> Path:
    """Renders ``README.md`` from the folder's build manifest (see :func:`render_card`).

    Raises:
        ValueError: If the folder holds no complete build (see :meth:`BenchmarkManifest.read`).
    """
    out_dir = Path(out_dir)
    manifest = BenchmarkManifest.read(out_dir)
    path = out_dir / CARD
    with atomic_path(path) as tmp:
        tmp.write_text(render_card(manifest, repo_id))
    return path


def render_card(manifest: BenchmarkManifest, repo_id: str | None = None) -> str:
    """The card of a build manifest: YAML ``configs:`` for every config, and the documentation.

    Args:
        manifest: The build manifest.
        repo_id: Hub repo the usage snippets name (default ``<org>/{name}``).
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    configs = manifest.configs
    first_clean = next(name for name in configs if name.endswith("-clean"))
    yaml_configs = [
        {
            "config_name": name,
            "data_files": [{"split": split, "path": f"{name}/{split}-*"} for split in splits],
            **({"default": True} if name == first_clean else {}),
        }
        for name, splits in configs.items()
    ]
    datasets_info = manifest.datasets
    licenses = sorted({d.license for d in datasets_info.values()})
    card_data = DatasetCardData(
        license=licenses[0] if len(licenses) == 1 else "other",
        task_categories=["image-classification"],
        tags=["medical", "robustness", "corruptions", "hf-robustmed"],
        pretty_name=manifest.name,
        configs=yaml_configs,
    )
    suites, built = [], {}
    for info in datasets_info.values():
        if info.suite:
            built.setdefault(info.suite, set()).update(info.corruptions)
    for suite, names in built.items():
        rows = [
            {"name": r.name, "op": r.op, "params": [format_param(p) for p in r.params]}
            for r in describe_corruptions(suite)
            if r.name in names
        ]
        suites.append({"name": suite, "rows": rows})
    settings = manifest.settings
    card = DatasetCard.from_template(
        card_data,
        template_str=read_template("dataset_card.md"),
        pretty_name=manifest.name,
        summary=f"{manifest.name}: {len(datasets_info)} dataset(s) × corruptions × 5 severities, for measuring "
        "how medical image classifiers and vision-language models degrade under realistic image corruptions.",
        generator=settings.generator,
        repo_id=repo_id or f"<org>/{manifest.name}",
        example_config=next((name for name in configs if not name.endswith("-clean")), first_clean),
        datasets=[
            {
                "id": key,
                "n_classes": len(d.class_names),
                "splits": ", ".join(f"{s} ({n})" for s, n in d.splits.items()),
                "license": d.license,
                "description": d.description,
            }
            for key, d in datasets_info.items()
        ],
        suites=suites,
        seed=settings.seed,
        seeding=manifest.seeding,
        grey=_GREY[settings.grey],
        n_configs=len(configs),
        n_images=sum(sum(splits.values()) for splits in configs.values()),
        citations="\n".join(dict.fromkeys(c for d in datasets_info.values() for c in d.citation.splitlines() if c)),
    )
    return str(card)
