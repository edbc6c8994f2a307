"""hf-robustmed: robustness benchmarks, evaluation and adaptation of medical vision-language models."""

__version__ = "0.1.0"
