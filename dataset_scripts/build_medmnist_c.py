"""Build MedMNIST-C as a Hugging Face dataset folder, and optionally push it to the Hub.

    python dataset_scripts/build_medmnist_c.py --source-root ~/medmnist -o MedMNIST-C --workers 2 \\
        [--datasets bloodmnist,breastmnist,octmnist,pneumoniamnist,retinamnist] [--download] \\
        [--push-to-hub ORG/MedMNIST-C]

A thin wrapper over ``hf-robustmed build medmnist-c``: every option of it applies, ``--push-to-hub`` included.
The paper's five datasets are bloodmnist, breastmnist, octmnist, pneumoniamnist and retinamnist.
"""

import sys

from hf_robustmed.cli import build_script

if __name__ == "__main__":
    sys.exit(build_script("medmnist-c", sys.argv[1:]))
