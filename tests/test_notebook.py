"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel (nbclient), from a scratch folder."""

from __future__ import annotations

import pytest

from .conftest import ROOT

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def test_the_notebook_is_committed_without_outputs():
    import nbformat
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_quickstart_notebook_runs(mnist_dir, tmp_path, monkeypatch):
    import nbclient
    import nbformat
    monkeypatch.setenv("DLMNIST_DATA", str(mnist_dir))  # the kernel inherits the environment
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}})
    client.execute()  # a failing cell raises CellExecutionError with its traceback
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the curve and the predictions, inline
    assert any("predicted:" in o.get("text", "") for o in outputs)
    assert (tmp_path / "runs" / "quickstart" / "version_0" / "metrics.csv").is_file()  # written in the scratch folder
