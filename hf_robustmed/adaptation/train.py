"""RobustMedCLIP training with accelerate: the same script on CPU, one GPU or several.

    hf-robustmed train --config configs/robustmedclip.yaml --benchmarks MedMNIST-C,MediMeta-C
    accelerate launch -m hf_robustmed.adaptation.train --config configs/robustmedclip.yaml

A checkpoint (LoRA weights, optimiser, counters) is written after every epoch; rerunning the same command
resumes from the last one and ends where an uninterrupted run ends. The output folder becomes a PEFT adapter
(``adapter_config.json``, ``adapter_model.safetensors``) with its model card, few-shot manifest, config and a
JSON-lines log.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_path
from ..models.peft_family import base_model_id
from .config import TrainConfig, config_from_args, train_argument_parser
from .data import (
    AugmentedImages,
    EpochPermutation,
    JointSet,
    build_joint_set,
    corruption_augmenters,
    seen_corruption_names,
)
from .lora import LoraClassifier, add_lora, trainable_parameters

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
SUMMARY = "training_summary.json"


@dataclass
class TrainState:
    """Counters saved with each checkpoint."""

    epoch: int = -1  # last finished epoch
    global_step: int = 0
    best_score: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0
    log_bytes: int = 0


class SelectionImages:
    """Selection rows decoded with the model's own (evaluation) preprocessing; items (pixels, label, dataset id).

    Holds only the transform (not the model), so that data-loading workers stay light.
    """

    def __init__(self, joint: JointSet, preprocess):
        from ..data.reader import decode_png

        self.decode, self.preprocess = decode_png, preprocess
        self.rows = [
            (image, int(label), i)
            for i, d in enumerate(joint.datasets)
            for image, label in zip(joint.selection[d].images, joint.selection[d].labels, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, row: int):
        from PIL import Image

        image, label, dataset = self.rows[row]
        return self.preprocess(Image.fromarray(self.decode(image)).convert("RGB")), label, dataset


class Trainer:
    """One training run of a :class:`TrainConfig` (see the module docstring)."""

    def __init__(self, config: TrainConfig, *, progress: bool = True):
        from accelerate import Accelerator

        if not config.benchmarks:
            raise ValueError("no benchmarks given: pass the benchmark folders or Hub repos holding the datasets")
        self.config, self.progress = config, progress
        self.out = Path(config.output_dir)
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.gradient_accumulation
        )
        per_step = self.accelerator.num_processes * config.gradient_accumulation
        if config.batch_size % per_step:
            raise ValueError(
                f"batch_size {config.batch_size} is not divisible by processes × accumulation = {per_step}"
            )
        self.micro_batch = config.batch_size // per_step

    # --- setup -------------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        from open_clip import get_model_preprocess_cfg

        from ..hub import resolve_benchmark
        from ..models import create_model

        config, device = self.config, self.accelerator.device
        clean = [f"{d}-clean" for d in config.datasets]  # from a Hub repo, only the clean configs are downloaded
        folders = [resolve_benchmark(b, clean) for b in config.benchmarks]
        self.joint = build_joint_set(
            folders,
            config.datasets,
            split=config.split,
            fraction=config.fraction,
            shots=config.shots,
            selection=config.selection,
            selection_max_per_dataset=config.selection_max_per_dataset,
            seed=config.seed,
        )
        base = create_model(config.base_model, device=str(device))
        text = base.encode_text(self.joint.prompts(config.train_template))
        self.selection_weights = torch.cat(
            [base.classifier(self.joint.class_names[d], d, (config.eval_template,)) for d in self.joint.datasets]
        )
        torch.manual_seed(config.seed)  # LoRA initialisation
        peft_model = add_lora(
            base.module,
            base_model_id(config.base_model),
            rank=config.rank,
            alpha=config.lora_alpha,
            dropout=config.dropout,
            target_modules=config.target_modules,
        )
        self.head = LoraClassifier(
            peft_model, text, temperature=config.temperature, normalize_image_features=config.normalize_image_features
        )
        params = [p for p in self.head.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        cfg = get_model_preprocess_cfg(base.module)
        size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
        images, labels = self.joint.training_rows()
        self.augmenters = corruption_augmenters(
            self.joint.datasets,
            config.augment,
            suite=config.augment_suite,
            continuous=config.augment_continuous,
            p_clean=config.augment_p_clean,
            seed=config.seed,
        )
        per_row = [self.augmenters[d] for d in self.joint.datasets for _ in self.joint.train[d].images]
        self.train_set = AugmentedImages(
            images,
            labels,
            size=size,
            mean=cfg["mean"],
            std=cfg["std"],
            seed=config.seed,
            corruptions=per_row if config.augment is not None else None,
        )
        self.sampler = EpochPermutation(len(images), config.seed)
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_size=self.micro_batch, sampler=self.sampler, num_workers=config.num_workers
        )
        selection = SelectionImages(self.joint, base.preprocess)
        selection_loader = (
            torch.utils.data.DataLoader(selection, batch_size=config.eval_batch_size, num_workers=config.num_workers)
            if len(selection)
            else None
        )
        self.head, self.optimizer, self.loader = self.accelerator.prepare(self.head, self.optimizer, loader)
        self.selection_loader = self.accelerator.prepare(selection_loader) if selection_loader else None

    @property
    def peft_model(self):
        return self.accelerator.unwrap_model(self.head).peft_model

    # --- checkpoints ---------------------------------------------------------------------------------------------
    def _checkpoints(self) -> list[Path]:
        return sorted(p for p in (self.out / "checkpoints").glob("epoch-*") if (p / "state.json").exists())

    def _save_checkpoint(self, state: TrainState, best: dict[str, torch.Tensor]) -> None:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        if self.accelerator.is_main_process:
            final = self.out / "checkpoints" / f"epoch-{state.epoch:03d}"
            tmp = final.with_name(f".{final.name}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            save_file(
                _contiguous(get_peft_model_state_dict(self.peft_model, save_embedding_layers=False)),
                tmp / "adapter_model.safetensors",
            )
            save_file(_contiguous(best), tmp / "best_adapter_model.safetensors")
            torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
            (tmp / "state.json").write_text(json.dumps(state.__dict__))  # written last: marks it complete
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            for old in self._checkpoints()[:-1]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()

    def _resume(self) -> tuple[TrainState, dict[str, torch.Tensor]]:
        from peft import get_peft_model_state_dict, set_peft_model_state_dict
        from safetensors.torch import load_file

        checkpoints = self._checkpoints()
        if not checkpoints:
            return TrainState(), {
                k: v.detach().clone()
                for k, v in get_peft_model_state_dict(self.peft_model, save_embedding_layers=False).items()
            }
        last = checkpoints[-1]
        state = TrainState(**json.loads((last / "state.json").read_text()))
        set_peft_model_state_dict(self.peft_model, load_file(last / "adapter_model.safetensors"))
        self.optimizer.load_state_dict(torch.load(last / "optimizer.pt", weights_only=True, map_location="cpu"))
        if self.accelerator.is_main_process:
            log = self.out / "train_log.jsonl"
            if log.exists():  # drop lines of the interrupted epoch: they will be written again
                with log.open("r+b") as handle:
                    handle.truncate(state.log_bytes)
            self._print(f"resuming after epoch {state.epoch + 1} from {last}")
        return state, load_file(last / "best_adapter_model.safetensors")

    # --- logging -------------------------------------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if self.accelerator.is_main_process:
            with (self.out / "train_log.jsonl").open("a") as handle:
                handle.write(json.dumps(record) + "\n")

    def _print(self, message: str) -> None:
        if self.progress and self.accelerator.is_main_process:
            from tqdm.auto import tqdm

            tqdm.write(message)

    # --- loop ----------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def select_score(self) -> float | None:
        """Mean per-dataset zero-shot accuracy on the selection rows (eval prompt, normalised features)."""
        if self.selection_loader is None:
            return None
        self.head.eval()
        weights = self.selection_weights.to(self.accelerator.device)
        offsets = torch.tensor([self.joint.offsets[d] for d in self.joint.datasets], device=weights.device)
        sizes = torch.tensor([len(self.joint.class_names[d]) for d in self.joint.datasets], device=weights.device)
        hits, owners = [], []
        for pixels, labels, datasets in self.selection_loader:
            with self.accelerator.autocast():
                features = self.peft_model.encode_image(pixels).float()
            scores = torch.nn.functional.normalize(features, dim=-1) @ weights.T
            column = torch.arange(weights.shape[0], device=scores.device)
            own = (column >= offsets[datasets, None]) & (column < (offsets + sizes)[datasets, None])
            pred = scores.masked_fill(~own, float("-inf")).argmax(dim=1) - offsets[datasets]
            hit, owner = self.accelerator.gather_for_metrics(((pred == labels).float(), datasets))
            hits.append(hit.cpu())
            owners.append(owner.cpu())
        hits, owners = torch.cat(hits), torch.cat(owners)
        return float(np.mean([hits[owners == i].mean().item() for i in owners.unique().tolist()]))

    def _train_epoch(self, epoch: int, state: TrainState, bar) -> tuple[float, float]:
        """One epoch; returns its mean loss and training images per second."""
        self.head.train()
        self.loader.set_epoch(epoch)  # accelerate's loader re-sets its sampler's epoch from its own counter
        self.sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch)
        torch.manual_seed(self.config.seed + 1 + epoch)  # LoRA dropout draws
        losses, window, started = [], [], time.perf_counter()
        for pixels, labels in self.loader:
            with self.accelerator.accumulate(self.head):
                loss = torch.nn.functional.cross_entropy(self.head(pixels).float(), labels)
                self.accelerator.backward(loss)
                self.optimizer.step()
                self.optimizer.zero_grad()
            window.append(self.accelerator.reduce(loss.detach(), reduction="mean").item())
            if self.accelerator.sync_gradients:
                state.global_step += 1
                bar.update(1)
                losses.extend(window)
                if state.global_step % self.config.log_every == 0:
                    self._log({"epoch": epoch + 1, "step": state.global_step, "loss": float(np.mean(window))})
                bar.set_postfix(loss=f"{np.mean(window):.4f}")
                window = []
        losses.extend(window)
        return float(np.mean(losses)), len(self.train_set) / (time.perf_counter() - started)

    def run(self) -> Path:
        """Trains (or resumes, or finds the run finished) and writes the adapter folder; returns it."""
        from tqdm.auto import tqdm

        if (self.out / SUMMARY).exists():
            self._print(f"{self.out} holds a finished run; delete it to train again")
            return self.out
        self.out.mkdir(parents=True, exist_ok=True)
        self._setup()
        state, best = self._resume()
        steps_per_epoch = math.ceil(len(self.loader) / self.config.gradient_accumulation)
        trainable, total = trainable_parameters(self.peft_model)
        if state.epoch < 0:
            self._print(
                f"training {trainable:,} of {total:,} parameters on {len(self.train_set)} images, "
                f"{self.joint.num_classes} classes, {self.accelerator.num_processes} process(es)"
            )
            self._log(
                {
                    "event": "start",
                    "trainable_parameters": trainable,
                    "total_parameters": total,
                    "train_images": len(self.train_set),
                    "classes": self.joint.num_classes,
                    "processes": self.accelerator.num_processes,
                    "zero_shot_score": self.select_score(),
                }
            )
        bar = tqdm(
            total=steps_per_epoch * self.config.epochs,
            initial=state.global_step,
            desc="train",
            disable=not (self.progress and self.accelerator.is_main_process),
        )
        for epoch in range(state.epoch + 1, self.config.epochs):
            loss, images_per_second = self._train_epoch(epoch, state, bar)
            score = self.select_score() if self.config.selection != "last" else None
            improved = score is not None and (state.best_score is None or score > state.best_score)
            if improved:
                from peft import get_peft_model_state_dict

                state.best_score, state.best_epoch, state.stale_epochs = score, epoch, 0
                best = {
                    k: v.detach().clone()
                    for k, v in get_peft_model_state_dict(self.peft_model, save_embedding_layers=False).items()
                }
            elif score is not None:
                state.stale_epochs += 1
            self._log(
                {
                    "epoch": epoch + 1,
                    "step": state.global_step,
                    "train_loss": loss,
                    "selection_score": score,
                    "images_per_second": images_per_second,
                }
            )
            state.epoch = epoch
            state.log_bytes = (self.out / "train_log.jsonl").stat().st_size if self.accelerator.is_main_process else 0
            self._save_checkpoint(state, best)
            if self.config.patience is not None and state.stale_epochs >= self.config.patience:
                self._print(f"early stop after epoch {epoch + 1}: no improvement for {state.stale_epochs} epochs")
                break
        bar.close()
        self._finish(state, best)
        return self.out

    def _finish(self, state: TrainState, best: dict[str, torch.Tensor]) -> None:
        from peft import set_peft_model_state_dict

        use_best = state.best_epoch is not None
        if use_best:
            set_peft_model_state_dict(self.peft_model, best)
        if self.accelerator.is_main_process:
            tmp = self.out / ".adapter.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            self.peft_model.save_pretrained(tmp, save_embedding_layers=False)
            for name in ADAPTER_FILES:
                (tmp / name).replace(self.out / name)
            shutil.rmtree(tmp)
            self.joint.save_manifest(self.out / "fewshot_manifest.json")
            self.config.to_yaml(self.out / "training_config.yaml")
            selection = (
                self.config.selection
                if self.selection_loader is not None or self.config.selection == "last"
                else "last (no rows left for val_remainder)"
            )
            summary = {
                "selection": selection,
                "selection_leaks_test_data": self.config.selection == "test",
                "selected_epoch": (state.best_epoch + 1) if use_best else state.epoch + 1,
                "selection_score": state.best_score,
                "epochs_run": state.epoch + 1,
                "optimizer_steps": state.global_step,
                "trainable_parameters": trainable_parameters(self.peft_model)[0],
                "train_images": len(self.train_set),
                "classes": self.joint.num_classes,
                "datasets": self.joint.datasets,
                "seen_corruptions": seen_corruption_names(self.augmenters),
                "augmentation": {d: t.to_dict() if t is not None else None for d, t in self.augmenters.items()},
            }
            from .card import write_adapter_card

            write_adapter_card(self.out, self.config, summary)
            with atomic_path(self.out / SUMMARY) as path:  # last: marks the run finished
                path.write_text(json.dumps(summary, indent=1))
            self._print(f"adapter written to {self.out} (epoch {summary['selected_epoch']}, {self.config.selection})")
        self.accelerator.wait_for_everyone()


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in tensors.items()}


def train(config: TrainConfig, *, progress: bool = True) -> Path:
    """Trains RobustMedCLIP as ``config`` says; returns the adapter folder."""
    return Trainer(config, progress=progress).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = train_argument_parser("hf_robustmed.adaptation.train", __doc__.split("\n")[0])
    train(config_from_args(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
