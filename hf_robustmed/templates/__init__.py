"""Card templates shipped inside the package (``model_cards/`` in the source tree links here).

Rendered by :mod:`hf_robustmed.data.card` (the dataset card of a built benchmark) and
:mod:`hf_robustmed.adaptation.card` (an adapter's model card); read with :mod:`importlib.resources`, so they are found
in a wheel install as in a source checkout.
"""

from __future__ import annotations

from importlib.resources import files


def read_template(name: str) -> str:
    """The text of template ``name`` (``dataset_card.md``, ``adapter_card.md``)."""
    return files(__name__).joinpath(name).read_text(encoding="utf-8")
