"""Converting the original RobustMedCLIP checkpoints into PEFT LoRA adapters (SPEC §7.6).

The original adds separate rank-r branches to the q, k and v slices of each block's fused ``attn.qkv`` Linear:
``qkv(x)[s] += B_s A_s x`` for s in q, k, v (k only in ``model.pth``, defect D5). Stacked, that is exactly one LoRA
of rank 3r with unit scale: ``lora_A = [A_q; A_k; A_v]`` and ``lora_B = blockdiag(B_q, B_k, B_v)``, which PEFT
stores as a plain adapter (``r = lora_alpha = 3r``). Converted adapters go through the same evaluation as ours.

The key names are matched by suffix (``…trunk.blocks.{i}.attn.qkv.linear_{a|b}_{q|k|v}.weight``), so the wrapper
prefixes of the original code (``lora_vit.lora_vit.``) do not matter; they could not be checked against a
downloaded release here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ..files import atomic_path
from .config import QKV_TARGET

_BRANCH = re.compile(r"(?:^|\.)trunk\.blocks\.(\d+)\.attn\.qkv\.linear_([ab])_([qkv])\.weight$")
_BASE_QKV = re.compile(r"(?:^|\.)trunk\.blocks\.(\d+)\.attn\.qkv\.qkv\.(weight|bias)$")


def load_original_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The original ``model.pth`` (a state dict, or a dict holding one under ``state_dict``/``model``)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no state dict of tensors")
    return state


def branches(state: dict[str, torch.Tensor]) -> dict[int, dict[str, torch.Tensor]]:
    """Per block, its branch matrices keyed ``a_q``, ``b_q``, ``a_k`` …"""
    blocks: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        match = _BRANCH.search(key)
        if match:
            block, kind, part = match.groups()
            blocks.setdefault(int(block), {})[f"{kind}_{part}"] = value.float()
    if not blocks:
        sample = ", ".join(list(state)[:5])
        raise ValueError(
            f"no LoRA branches (…trunk.blocks.N.attn.qkv.linear_a_q.weight) in the checkpoint; keys: {sample}…"
        )
    return blocks


def stack_block(parts: dict[str, torch.Tensor], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One block's (lora_A, lora_B) of the stacked rank: A rows [A_q; A_k; A_v], B block-diagonal."""
    present = [s for s in "qkv" if f"a_{s}" in parts]
    for s in present:
        if f"b_{s}" not in parts:
            raise ValueError(f"branch {s} has A but no B")
    a = torch.cat([parts[f"a_{s}"] for s in present])
    ranks = [parts[f"a_{s}"].shape[0] for s in present]
    b = torch.zeros(3 * width, sum(ranks))
    column = 0
    for s, rank in zip(present, ranks, strict=True):
        row = "qkv".index(s) * width
        b[row : row + width, column : column + rank] = parts[f"b_{s}"]
        column += rank
    return a, b


def convert_rmc_checkpoint(checkpoint: str | Path, out_dir: str | Path, *, base_model: str = "biomedclip") -> Path:
    """Writes a PEFT adapter folder equivalent to an original RobustMedCLIP ``model.pth``; returns the folder.

    Checks that the checkpoint's frozen qkv weights (where stored) equal the base model's, so that an adapter is
    never put on a base it was not trained on.
    """
    from peft import set_peft_model_state_dict

    from ..models import create_model
    from ..models.peft_family import base_model_id
    from .lora import add_lora

    state = load_original_state(checkpoint)
    blocks = branches(state)
    base = create_model(base_model)
    _check_base(state, base.module)
    width = next(iter(blocks.values()))["a_q"].shape[1]
    stacked = {i: stack_block(parts, width) for i, parts in sorted(blocks.items())}
    ranks = {a.shape[0] for a, _ in stacked.values()}
    if len(ranks) != 1:
        raise ValueError(f"blocks have different total ranks {sorted(ranks)}")
    rank = ranks.pop()
    model = add_lora(
        base.module,
        base_model_id(base_model),
        rank=rank,
        alpha=rank,
        dropout=0.0,
        target_modules=QKV_TARGET,
        init_lora_weights=False,
    )
    weights = {}
    for i, (a, b) in stacked.items():
        prefix = f"base_model.model.visual.trunk.blocks.{i}.attn.qkv"
        weights[f"{prefix}.lora_A.weight"], weights[f"{prefix}.lora_B.weight"] = a, b
    result = set_peft_model_state_dict(model, weights)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"the checkpoint's blocks do not match the base model: missing {missing[:3]}, "
            f"unexpected {list(result.unexpected_keys)[:3]}"
        )
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    model.save_pretrained(tmp, save_embedding_layers=False)
    (tmp / "conversion.json").write_text(
        json.dumps(
            {
                "source": str(checkpoint),
                "blocks": len(stacked),
                "stacked_rank": rank,
                "branches": sorted(next(iter(blocks.values()))),
                "base_model": base_model_id(base_model),
            },
            indent=1,
        )
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for file in tmp.iterdir():
        with atomic_path(out_dir / file.name) as target:
            file.replace(target)
    tmp.rmdir()
    return out_dir


def _check_base(state: dict[str, torch.Tensor], module: torch.nn.Module) -> None:
    own = dict(module.named_parameters())
    for key, value in state.items():
        match = _BASE_QKV.search(key)
        if match:
            block, kind = match.groups()
            ours = own.get(f"visual.trunk.blocks.{block}.attn.qkv.{kind}")
            if ours is None or ours.shape != value.shape or not torch.allclose(ours.float(), value.float(), atol=1e-6):
                raise ValueError(f"the checkpoint's frozen {key} differs from the base model's: wrong base model?")
