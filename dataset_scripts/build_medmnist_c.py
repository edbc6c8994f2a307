"""Build MedMNIST-C as a Hugging Face dataset folder, and optionally push it to the Hub.

    python dataset_scripts/build_medmnist_c.py --source-root ~/medmnist -o MedMNIST-C --workers 2 \\
        [--datasets bloodmnist,breastmnist,octmnist,pneumoniamnist,retinamnist] [--download] [--push-to-hub ORG/MedMNIST-C]

A thin wrapper over ``hf-robustmed build medmnist-c`` and ``hf-robustmed push``; every option of the former
applies. The paper's five datasets are bloodmnist, breastmnist, octmnist, pneumoniamnist and retinamnist.
"""

import sys

from hf_robustmed.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    repo = None
    if "--push-to-hub" in argv:
        at = argv.index("--push-to-hub")
        repo = argv[at + 1]
        del argv[at : at + 2]
    code = main(["build", "medmnist-c", *argv])
    if code == 0 and repo:
        out = argv[argv.index("-o") + 1] if "-o" in argv else argv[argv.index("--out") + 1]
        code = main(["push", out, repo])
    sys.exit(code)
