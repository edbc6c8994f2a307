"""Build MediMeta-C as a Hugging Face dataset folder, and optionally push it to the Hub.

    python dataset_scripts/build_medimeta_c.py --source-root ~/medimeta -o MediMeta-C --workers 2 \\
        [--datasets aml,fundus,mammo_calc,mammo_mass,oct,pbc,pneumonia] [--download] [--push-to-hub ORG/MediMeta-C]

A thin wrapper over ``hf-robustmed build medimeta-c`` and ``hf-robustmed push``; every option of the former
applies. Test and validation splits, the 7 MediMeta-C corruptions, grey images stored as RGB.
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
    code = main(["build", "medimeta-c", *argv])
    if code == 0 and repo:
        out = argv[argv.index("-o") + 1] if "-o" in argv else argv[argv.index("--out") + 1]
        code = main(["push", out, repo])
    sys.exit(code)
