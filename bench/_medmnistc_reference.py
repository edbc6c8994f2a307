"""Times the MedMNIST-C reference (``medmnistc`` 0.1.0) on given images; run by bench/corruptions.py.

Runs inside the reference environment (``make ref-env``): prints a JSON object
``{"<dataset>/<corruption>": images_per_second, ...}``. The pipeline per image is the reference generator's own
(DatasetManager): ``Image.fromarray(img).convert('RGB')`` → ``apply(img, severity)`` → ``convert('L')`` for grey
datasets.
"""

import argparse
import json
import random
import time

import numpy as np
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", required=True, help="npz with 'rgb' (N×224×224×3) and 'grey' (N×224×224)")
    parser.add_argument("--pairs", required=True, help="comma-separated dataset/corruption pairs")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    from medmnistc.corruptions.registry import CORRUPTIONS_DS, DATASET_RGB

    data = np.load(args.images)
    np.random.seed(0)
    random.seed(0)
    results = {}
    for pair in args.pairs.split(","):
        dataset, name = pair.split("/")
        corruptor = CORRUPTIONS_DS[dataset][name]
        corruptor.rng = np.random.default_rng(0)
        rgb = DATASET_RGB[dataset]
        images = data["rgb"] if rgb else data["grey"]

        def run() -> None:
            for severity in range(5):
                for image in images:
                    out = corruptor.apply(Image.fromarray(image).convert("RGB"), severity)
                    if not rgb:
                        out = Image.fromarray(out).convert("L")
                    np.asarray(out)

        corruptor.apply(Image.fromarray(images[0]).convert("RGB"), 0)  # warm-up (lazy imports, asset loading)
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        results[pair] = 5 * len(images) / best
    print(json.dumps(results))


if __name__ == "__main__":
    main()
