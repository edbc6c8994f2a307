"""mCE: ImageNet-C style mean corruption error of classifiers, relative to a reference model (hf-robustmed)."""

from __future__ import annotations

import datasets
import evaluate
import pandas as pd

from hf_robustmed.metrics import mce_table, results_from_predictions, validate_examples

_CITATION = """\
@inproceedings{hendrycks2019benchmarking,
  title={Benchmarking Neural Network Robustness to Common Corruptions and Perturbations},
  author={Hendrycks, Dan and Dietterich, Thomas},
  booktitle={International Conference on Learning Representations},
  year={2019}
}
"""

_DESCRIPTION = """\
Mean corruption error (mCE) of one or more models on corruption benchmarks such as MedMNIST-C and MediMeta-C.
Per dataset d and corruption c, with E the top-1 error: CE = sum_s E^f_{s,c} / sum_s E^ref_{s,c};
mCE_d = 100 * mean_c CE; RelCE = sum_s (E^f_{s,c} - E^f_clean) / sum_s (E^ref_{s,c} - E^ref_clean);
CleanErr_d = 100 * E^f_clean / E^ref_clean. Dataset scores are averaged (unweighted) over collections and over all
datasets. The reference model scores 100. Undefined ratios (zero reference error) are NaN, warned about, left out
of the means and counted; the pairs columns say how many (dataset, corruption) pairs each mean rests on. Inputs are
checked before anything is stored: a missing label, a severity outside 1..5 (0 for clean) or not a whole number is
refused with an error naming the field, the index and the value. The computation is hf_robustmed.metrics.mce_table.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class of each example (int).
    references: true class of each example (int).
    dataset: dataset of each example, e.g. "bloodmnist".
    corruption: corruption of each example, "clean" for the clean test set.
    severity: severity 1..5 of each example, 0 for clean examples (whole numbers only: 2.5 is refused, not cast).
    model: name of the model that made each prediction; the reference model must be among them.
    reference_model: the model the errors are normalised by (default "clip-vit-b16").
    collections: optional dict of collection name -> list of datasets to average over.
Returns:
    reference_model: the reference model's name.
    table: {model: {column: value}}: headline mce, clean_err, rel_mce, mean_err (unnormalised mean error x 100),
        the same per collection ("mce/<collection>") and per dataset ("mce/<dataset>"), and the counts
        excluded_ce, excluded_rel_ce, excluded_clean_err of undefined ratios; pairs, ce_pairs, rel_ce_pairs (also
        per collection and dataset: "pairs/<dataset>", ...): how many (dataset, corruption) pairs there are and on
        how many of them mce and rel_mce rest.
Raises:
    ValueError: naming the field, index and value of a bad input (e.g. "severity[3] = 7: ..."), or a missing
        reference model or cell.
Examples:
    >>> mce = evaluate.load("path/to/mce")  # this folder, or its Space id
    >>> out = mce.compute(predictions=[0, 1, 0, 0, 0, 0, 1, 0], references=[0, 1] * 4, dataset=["d"] * 8,
    ...                   corruption=["clean", "clean", "blur", "blur"] * 2, severity=[0, 0, 1, 1] * 2,
    ...                   model=["a"] * 4 + ["ref"] * 4, reference_model="ref")
    >>> out["table"]["a"]["mce"], out["table"]["a"]["rel_mce"], out["table"]["ref"]["mce"]
    (50.0, 100.0, 100.0)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Mce(evaluate.Metric):
    """Mean corruption error table of the models in the inputs, relative to a reference model."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("int64"),
                    "references": datasets.Value("int64"),
                    "dataset": datasets.Value("string"),
                    "corruption": datasets.Value("string"),
                    "severity": datasets.Value("int32"),
                    "model": datasets.Value("string"),
                }
            ),
            reference_urls=["https://arxiv.org/abs/1903.12261"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Validates the inputs (before evaluate casts them to the features' types), then stores them."""
        validate_examples(
            {
                "predictions": predictions,
                "references": references,
                **{k: v for k, v in kwargs.items() if k in self._feature_names()},
            }
        )
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Validates one example, then stores it."""
        validate_examples(
            {
                name: None if value is None else [value]
                for name, value in {"predictions": prediction, "references": reference, **kwargs}.items()
                if name in self._feature_names()
            }
        )
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(
        self,
        predictions,
        references,
        dataset,
        corruption,
        severity,
        model,
        reference_model: str = "clip-vit-b16",
        collections: dict[str, list[str]] | None = None,
    ) -> dict:
        examples = pd.DataFrame(
            {
                "model": model,
                "dataset": dataset,
                "corruption": corruption,
                "severity": severity,
                "reference": references,
                "prediction": predictions,
            }
        )
        table = mce_table(results_from_predictions(examples), reference=reference_model, collections=collections)
        return {"reference_model": reference_model, "table": table.to_dict(orient="index")}
