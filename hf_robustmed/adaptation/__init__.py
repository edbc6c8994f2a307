"""RobustMedCLIP: few-shot sampling, the joint training set, LoRA through PEFT, training with accelerate.

``hf_robustmed.adaptation.train`` holds the trainer (it needs the ``adapt`` extra); this package imports
without torch.
"""

from .config import TrainConfig
from .sampling import FewShotManifest, k_shot, stratified_fraction

__all__ = ["FewShotManifest", "TrainConfig", "k_shot", "stratified_fraction"]
