"""Class prompts: the paper's template and prompt ensembles."""

from __future__ import annotations

from collections.abc import Sequence

# The original evaluation template (SPEC §5.1): "a medical image of a {class} belonging to {dataset}".
PAPER_TEMPLATE = "a medical image of a {c} belonging to {d}"
# The original training template (defect D14: no article).
PAPER_TRAIN_TEMPLATE = "a medical image of {c} belonging to {d}"
DEFAULT_TEMPLATES = (PAPER_TEMPLATE,)
ENSEMBLE_TEMPLATES = (
    PAPER_TEMPLATE,
    "a medical image of {c}",
    "an image of {c}",
    "a picture of {c}",
    "a photo of a {c}",
    "a medical image showing {c}",
)


def build_prompts(
    class_names: Sequence[str], dataset: str, templates: Sequence[str] = DEFAULT_TEMPLATES
) -> list[list[str]]:
    """One list of prompts per class (``templates`` filled with ``{c}`` the class and ``{d}`` the dataset id)."""
    if not class_names:
        raise ValueError("at least one class name is needed")
    if not templates:
        raise ValueError("at least one prompt template is needed")
    return [[template.format(c=name, d=dataset) for template in templates] for name in class_names]
