"""``python -m hf_robustmed.reproduce`` (e.g. under ``accelerate launch``): ``hf-robustmed reproduce``."""

import sys

from .cli import main

sys.exit(main())
