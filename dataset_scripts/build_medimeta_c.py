"""Build MediMeta-C as a Hugging Face dataset folder, and optionally push it to the Hub.

    python dataset_scripts/build_medimeta_c.py --source-root ~/medimeta -o MediMeta-C --workers 2 \\
        [--datasets aml,fundus,mammo_calc,mammo_mass,oct,pbc,pneumonia] [--download] [--push-to-hub ORG/MediMeta-C]

A thin wrapper over ``hf-robustmed build medimeta-c``: every option of it applies, ``--push-to-hub`` included.
Test and validation splits, the 7 MediMeta-C corruptions, grey images stored as RGB.
"""

import sys

from hf_robustmed.cli import build_script

if __name__ == "__main__":
    sys.exit(build_script("medimeta-c", sys.argv[1:]))
