"""Startup time of the demo Space (spaces/robustmedclip-demo), offline with the tiny stand-in models.

Measures, in a fresh interpreter, the time from nothing imported to the first prediction: importing the app
(gradio, torch, the toolkit) and building its interface, then the first analysis (creating both models, the text
classifier, five corruptions and twelve forward passes). The stand-ins (tiny BiomedCLIP in a seeded Hub cache and a
LoRA adapter over it) are prepared beforehand in another process, so their creation is not counted.

    python bench/space_startup.py            # prints the times; exit status 1 if over --limit seconds
    python bench/space_startup.py --real     # the real models of the environment variables (downloads them)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "spaces" / "robustmedclip-demo" / "app.py"

PREPARE = r"""
import sys
from pathlib import Path
root = Path(sys.argv[1])
from hf_robustmed.models import create_model
from hf_robustmed.testing import BIOMEDCLIP_REPO, seed_tiny_biomedclip
import peft
seed_tiny_biomedclip(root / "hub", root / "work")
module = create_model("biomedclip").module
module.name_or_path = BIOMEDCLIP_REPO
config = peft.LoraConfig(r=4, lora_alpha=4, target_modules=r"visual\.trunk\.blocks\.\d+\.attn\.qkv",
                         init_lora_weights=False)
peft.get_peft_model(module, config).save_pretrained(root / "adapter", save_embedding_layers=False)
"""

MEASURE = r"""
import time
start = time.perf_counter()
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("robustmedclip_demo_app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = app
spec.loader.exec_module(app)  # imports gradio, torch, the toolkit, and builds the Blocks
built = time.perf_counter()
outputs = app.run_analysis(None, app.DEFAULT_SAMPLE, app.SAMPLES[app.DEFAULT_SAMPLE].dataset, "pixelate", 3)
assert outputs[2] is not None and outputs[4] is not None, outputs[-1]
first = time.perf_counter()
outputs = app.run_analysis(None, "ct", "organamnist", "gaussian_noise", 5)
second = time.perf_counter()
print(json.dumps({"import_and_build_s": built - start, "first_prediction_s": first - built,
                  "ready_s": first - start, "next_analysis_s": second - first, "models": app.model_specs()}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="use the models of the environment, not stand-ins")
    parser.add_argument("--limit", type=float, default=30.0, help="seconds the app may take to be ready")
    args = parser.parse_args()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.real:
            env.update(
                HF_HUB_OFFLINE="1",
                HF_HUB_CACHE=str(root / "hub"),
                HF_HOME=str(root / "home"),
                GRADIO_TEMP_DIR=str(root / "gradio"),
                HF_ROBUSTMED_BASE_MODEL="biomedclip",
                HF_ROBUSTMED_ADAPTED_MODEL=f"peft:{root / 'adapter'}",
                HF_ROBUSTMED_DEVICE="cpu",
            )
            subprocess.run([sys.executable, "-c", PREPARE, str(root)], env=env, check=True, stderr=subprocess.DEVNULL)
        result = subprocess.run(
            [sys.executable, "-c", MEASURE, str(APP)], env=env, check=True, capture_output=True, text=True
        )
    times = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"models: {times['models']}")
    print(
        f"import + build: {times['import_and_build_s']:.1f} s; first prediction: {times['first_prediction_s']:.1f} s; "
        f"ready: {times['ready_s']:.1f} s (limit {args.limit:g} s); next analysis: {times['next_analysis_s']:.2f} s"
    )
    return 0 if times["ready_s"] <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
