"""The Space app of the mCE metric: the standard evaluate metric widget.

evaluate 0.4.6's ``launch_gradio_widget`` builds its form with ``gr.inputs``/``gr.outputs``, which Gradio 4 removed,
so this app builds the same widget (a table of inputs, the result as JSON) with current Gradio components.
"""

import re
from pathlib import Path

import evaluate
import gradio as gr

HERE = Path(__file__).resolve().parent
module = evaluate.load(str(HERE / "mce.py"))
feature_names = list(module.features)
numeric = {"predictions", "references", "severity"}


def _number(value):
    """A table cell as a number for the metric to check (``2.5`` stays ``2.5``; an empty cell is ``None``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value  # the metric names the field and the value
    return int(number) if number.is_integer() else number


def compute(table, reference_model: str) -> dict:
    """Runs the metric on the rows of the input table; bad inputs are shown as an error naming the field."""
    columns = {name: table[name].tolist() for name in feature_names}
    for name in numeric:
        columns[name] = [_number(value) for value in columns[name]]
    try:
        return module.compute(**columns, reference_model=reference_model)
    except ValueError as error:
        raise gr.Error(str(error)) from None


readme = (HERE / "README.md").read_text(encoding="utf-8")
gr.Interface(
    fn=compute,
    inputs=[
        gr.Dataframe(
            headers=feature_names,
            datatype=["number" if n in numeric else "str" for n in feature_names],
            label="one row per example",
        ),
        gr.Textbox(value="clip-vit-b16", label="reference model"),
    ],
    outputs=gr.JSON(label=module.name),
    title=f"Metric: {module.name}",
    description=module.info.description,
    article=re.sub(r"\A---\n.*?\n---\n", "", readme, flags=re.DOTALL),
).launch()
