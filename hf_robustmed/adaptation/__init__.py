"""RobustMedCLIP adaptation: few-shot sampling (training with PEFT LoRA is being built, see the issues)."""

from .sampling import FewShotManifest, k_shot, stratified_fraction

__all__ = ["FewShotManifest", "k_shot", "stratified_fraction"]
