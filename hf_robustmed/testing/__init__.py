"""Test scaffolding: tiny randomly initialised stand-ins saved in each model family's real file layout.

For the test suite, the offline demo (:mod:`hf_robustmed.demo`) and benchmarks only: production code (the model
loaders, evaluation, training, the Space's model loading) never imports this package. The stand-ins go through
the unchanged loading code — a folder for ``local-dir:`` / ``transformers:PATH`` / ``medclip:FOLDER``, or files
placed in a Hugging Face cache under the real repo ids so that ``hf-hub:`` and ``unimedclip`` resolve offline
(``HF_HUB_OFFLINE=1``). Every file they write carries the stand-in marker of
:mod:`hf_robustmed.models.provenance`, so a loaded stand-in always says ``provenance["weights"] == "stand-in"``.

* :mod:`.standins`: open_clip CLIP, transformers CLIP, a tiny BERT, BiomedCLIP seeded under its repo ids, and
  :func:`seed_hub_cache`;
* :mod:`.medclip`: MedCLIP in its release's ``pytorch_model.bin`` key layout;
* :mod:`.unimedclip`: UniMed-CLIP in the authors' open_clip-fork training-checkpoint layout.
"""

from .medclip import release_state_dict, save_tiny_medclip
from .standins import (
    BIOMEDBERT_REPO,
    BIOMEDCLIP_REPO,
    save_tiny_bert,
    save_tiny_open_clip,
    save_tiny_transformers_clip,
    seed_hub_cache,
    seed_tiny_biomedclip,
)
from .unimedclip import fork_state_dict, save_fork_checkpoint, save_tiny_unimedclip, seed_tiny_unimedclip

__all__ = [
    "BIOMEDBERT_REPO",
    "BIOMEDCLIP_REPO",
    "fork_state_dict",
    "release_state_dict",
    "save_fork_checkpoint",
    "save_tiny_bert",
    "save_tiny_medclip",
    "save_tiny_open_clip",
    "save_tiny_transformers_clip",
    "save_tiny_unimedclip",
    "seed_hub_cache",
    "seed_tiny_biomedclip",
    "seed_tiny_unimedclip",
]
