"""Times the reference generator, medmnistc's DatasetManager, on a MedMNIST npz; run by bench/build.py.

Runs in the reference environment (``make ref-env``). Prints ``{"seconds": …, "images": …}`` as JSON.
"""

import argparse
import contextlib
import io
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True, help="folder with {flag}_224.npz")
    parser.add_argument("--flag", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import numpy as np
    from medmnistc.corruptions.registry import CORRUPTIONS_DS
    from medmnistc.dataset_manager import DatasetManager

    with np.load(f"{args.root}/{args.flag}_224.npz") as data:
        n = len(data["test_images"])
    manager = DatasetManager(medmnist_path=args.root, output_path=args.out, random_seed=0)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        manager.create_dataset(args.flag)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "images": n * 5 * len(CORRUPTIONS_DS[args.flag])}))


if __name__ == "__main__":
    main()
