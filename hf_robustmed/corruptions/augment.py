"""Corruptions as a training augmentation, and the held-out split that keeps robustness numbers honest.

:class:`RandomCorruption` is MedMNIST-C's ``AugMedMNISTC`` on this engine: per call, the image is left clean with
probability ``p_clean`` (by default ``1 / (n + 1)``: ``identity`` as one more choice among the ``n`` corruptions,
as ``AugMedMNISTC`` does), otherwise one corruption is chosen uniformly and applied at a severity drawn uniformly
from ``severities``, or, with ``continuous=True``, at an intensity drawn uniformly between the smallest and largest
of them (a float severity on a 1/16 grid: every parameter interpolated along the suite's table, see
:mod:`hf_robustmed.corruptions.suites`). ``AugMedMNISTC`` draws each parameter independently between its
severity-1 and severity-5 values; here the parameters move together along the table, so an intensity between
two severities looks like something between those severities.

>>> from hf_robustmed.corruptions import RandomCorruption
>>> t = RandomCorruption(suite="medmnist-c/dermamnist", corruptions=seen_corruptions("medmnist-c/dermamnist"),
...                      continuous=True, seed=0)
>>> out = t(image)                      # PIL, uint8 array or tensor in, the same type and shape out
>>> out = t(image, key=(epoch, index))  # the draw depends only on (seed, key): same for any worker count

**Held-out protocol.** Training on the corruptions that the evaluation then measures inflates mCE. The default
split is by family (the operation's category): noise and digital (pixelation, JPEG, elastic) corruptions are
*seen* in training; blur, colour/exposure (acquisition), task-specific artefacts and weather are *held out*
(:func:`split_corruptions`). :func:`hf_robustmed.metrics.seen_held_out_mce` reports the two separately.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from .api import corrupt, list_corruptions
from .registry import get_op
from .seeding import Key, check_severity, key_words, stable_int
from .suites import get_suite

SEEN_FAMILIES = ("noise", "digital")
# Continuous intensities are rounded to 1/16 of a severity: effectively continuous, while the engine's per-parameter
# tables (the noises' exact output laws, ~30 ms each to build) are reused instead of rebuilt for every image.
INTENSITY_GRID = 16
FAMILIES = ("noise", "digital", "blur", "color", "artefact", "weather")
_STREAM = stable_int("RandomCorruption")


def corruption_family(name: str, suite: str | None = None) -> str:
    """The family (operation category) of corruption ``name`` in ``suite``: noise, digital, blur, color, …"""
    return get_op(get_suite(suite).entry(name).op).category


def split_corruptions(
    suite: str | None = None, seen_families: Sequence[str] = SEEN_FAMILIES
) -> tuple[list[str], list[str]]:
    """The suite's corruptions split into (seen in training, held out), by family, each in suite order.

    Raises:
        ValueError: On an unknown family name.
    """
    unknown = sorted(set(seen_families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown corruption family(ies) {', '.join(unknown)}; valid: {', '.join(FAMILIES)}")
    names = list_corruptions(suite)
    seen = [n for n in names if corruption_family(n, suite) in seen_families]
    return seen, [n for n in names if n not in seen]


def seen_corruptions(suite: str | None = None, seen_families: Sequence[str] = SEEN_FAMILIES) -> list[str]:
    """The suite's corruptions of the seen families (default: noise and digital)."""
    return split_corruptions(suite, seen_families)[0]


def _fresh_key() -> int:
    """A key for a call without one, from torch's global generator when torch is loaded (as torchvision's
    transforms draw; DataLoader seeds it per worker), else from Python's ``random``."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.randint(0, 2**62, ()).item())
    return random.getrandbits(62)


class RandomCorruption:
    """A torchvision-style transform applying one random corruption of a suite (see the module docstring).

    Args:
        suite: Parameter set (``imagenet-c`` when ``None``, ``medimeta-c``, ``medmnist-c/<flag>``).
        corruptions: Names to choose from (default: all of the suite's).
        severities: Severities to draw from; with ``continuous`` the bounds of a uniform intensity.
        continuous: Draw a float intensity uniformly in ``[min(severities), max(severities)]``.
        p_clean: Probability of leaving the image unchanged (default ``1 / (len(corruptions) + 1)``).
        seed: Base seed of the draws.

    Raises:
        ValueError: On an unknown suite or corruption, an empty set, a bad severity, probability or seed.
    """

    def __init__(
        self,
        suite: str | None = None,
        corruptions: Iterable[str] | None = None,
        severities: Sequence[int | float] = (1, 2, 3, 4, 5),
        continuous: bool = False,
        p_clean: float | None = None,
        seed: int = 0,
    ):
        resolved = get_suite(suite)
        self.suite = resolved.name
        self.corruptions = list(resolved.corruptions) if corruptions is None else list(corruptions)
        if not self.corruptions:
            raise ValueError("RandomCorruption needs at least one corruption")
        for name in self.corruptions:
            resolved.entry(name)
        self.severities = tuple(check_severity(s) for s in severities)
        if not self.severities:
            raise ValueError("RandomCorruption needs at least one severity")
        self.continuous = bool(continuous)
        self.p_clean = 1.0 / (len(self.corruptions) + 1) if p_clean is None else float(p_clean)
        if not 0.0 <= self.p_clean <= 1.0:
            raise ValueError(f"p_clean must be a probability in [0, 1], got {p_clean!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)

    def __repr__(self) -> str:
        return (
            f"RandomCorruption(suite={self.suite!r}, corruptions={self.corruptions!r}, "
            f"severities={self.severities!r}, continuous={self.continuous}, p_clean={self.p_clean:g}, "
            f"seed={self.seed})"
        )

    def draw(self, key: Key) -> tuple[str, int | float] | None:
        """The choice for ``key``: ``(corruption, severity)``, or ``None`` for a clean image. Depends only on
        (seed, key)."""
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, _STREAM, *key_words(key)])))
        if rng.random() < self.p_clean:
            return None
        name = self.corruptions[int(rng.integers(len(self.corruptions)))]
        if self.continuous:
            drawn = rng.uniform(min(self.severities), max(self.severities))
            severity = check_severity(round(drawn * INTENSITY_GRID) / INTENSITY_GRID)
        else:
            severity = self.severities[int(rng.integers(len(self.severities)))]
        return name, severity

    def __call__(self, *inputs: Any, key: Key | None = None) -> Any:
        """Corrupts an image (PIL, uint8 array, uint8 or float tensor ``…×C×H×W``) and returns the same type and
        shape. Several inputs (a v2 pipeline's sample) get the same draw on each image; others pass through."""
        if not inputs:
            raise TypeError("RandomCorruption needs an image")
        key = ("fresh", _fresh_key()) if key is None else key
        if len(inputs) == 1:
            return self._apply(inputs[0], key)
        first_tensor = next((i for i, x in enumerate(inputs) if _is_plain_tensor(x)), None)
        return tuple(
            self._apply(x, key) if _is_image(x) or i == first_tensor and not any(map(_is_tv_image, inputs)) else x
            for i, x in enumerate(inputs)
        )

    def _apply(self, image: Any, key: Key) -> Any:
        if isinstance(image, Image.Image):
            return self._pil(image, key)
        if isinstance(image, np.ndarray):
            return self._array(image, key)
        if "torch" in sys.modules and isinstance(image, sys.modules["torch"].Tensor):
            return self._tensor(image, key)
        raise TypeError(f"RandomCorruption takes a PIL image, a uint8 array or a tensor, got {type(image).__name__}")

    def _array(self, image: np.ndarray, key: Key) -> np.ndarray:
        choice = self.draw(key)
        if choice is None:
            return image
        return corrupt(image, choice[0], choice[1], suite=self.suite, seed=self.seed, key=key)

    def _pil(self, image: Image.Image, key: Key) -> Image.Image:
        choice = self.draw(key)
        if choice is None:
            return image
        out = Image.fromarray(corrupt(image, choice[0], choice[1], suite=self.suite, seed=self.seed, key=key))
        return out if out.mode == image.mode else out.convert(image.mode)

    def _tensor(self, image: Any, key: Key) -> Any:
        import torch

        if image.ndim < 2:
            raise ValueError(f"a tensor image is H×W or …×C×H×W, got shape {tuple(image.shape)}")
        if image.dtype != torch.uint8 and not image.dtype.is_floating_point:
            raise ValueError(f"a tensor image must be uint8 or floating point in [0, 1], got {image.dtype}")
        flat = image.reshape(-1, *image.shape[-3:]) if image.ndim >= 3 else image[None, None]
        outs = []
        for i, one in enumerate(flat):
            item_key = key if flat.shape[0] == 1 else (key, i)
            choice = self.draw(item_key)
            if choice is None:
                outs.append(one)
                continue
            pixels = one if one.dtype == torch.uint8 else _to_uint8(one)
            array = np.ascontiguousarray(pixels.cpu().numpy().transpose(1, 2, 0))
            done = corrupt(array, choice[0], choice[1], suite=self.suite, seed=self.seed, key=item_key)
            result = torch.from_numpy(done.reshape(array.shape).transpose(2, 0, 1).copy()).to(one.device)
            outs.append(result if one.dtype == torch.uint8 else result.to(one.dtype) / 255)
        out = torch.stack(outs).reshape(image.shape)
        return out if type(image) is torch.Tensor else out.as_subclass(type(image))

    def to_dict(self) -> dict[str, Any]:
        """The transform's settings (to record with a trained model)."""
        return {
            "suite": self.suite,
            "corruptions": list(self.corruptions),
            "severities": list(self.severities),
            "continuous": self.continuous,
            "p_clean": self.p_clean,
            "seed": self.seed,
        }


def _to_uint8(image: Any) -> Any:
    """A float tensor image in [0, 1] as uint8 levels (rounded, clamped)."""
    import torch

    return (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)


def _is_tv_image(x: Any) -> bool:
    tv = sys.modules.get("torchvision.tv_tensors")
    return tv is not None and isinstance(x, tv.Image)


def _is_plain_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and type(x) is torch.Tensor


def _is_image(x: Any) -> bool:
    return isinstance(x, Image.Image) or (isinstance(x, np.ndarray) and x.dtype == np.uint8) or _is_tv_image(x)
