"""The one sweep over every experiment config (found under configs/, see conftest.EXPERIMENT_CONFIGS).

Per config, once: its ``--print_config`` round-trips (the printed config, given back as the only file, resolves
to the same config); the real CLI fits it with ``fast_dev_run`` on the real MNIST files (a config that starts from
another experiment's checkpoint gets a short run of that one first), which steps with finite, nonzero gradients,
changes parameters and validates; the trained model builds on the base, every
trainable parameter gets a gradient and its outputs are finite; a checkpoint of it reloads with
``load_from_checkpoint(path)`` alone and gives the same outputs as the model the config builds; and
``dlmnist summarize`` agrees with its shapes.
"""

from __future__ import annotations

import json
import math

import lightning as L
import pytest
import torch
import yaml
from torch.utils._pytree import tree_leaves

from dlmnist import config as resolver
from dlmnist.cli import call_cli
from dlmnist.models.base import Model
from dlmnist.models.optim import Optim

from .conftest import EXPERIMENT_CONFIGS, config_id, run_cli


def leaves(out) -> list[torch.Tensor]:
    return [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]


@pytest.mark.parametrize("config", EXPERIMENT_CONFIGS, ids=config_id)
def test_every_config(config, mnist_dir, tmp_path, prerequisite_runs, capsys):
    overrides = [*prerequisite_runs(config), f"--data.data_dir={mnist_dir}", f"--runs_dir={tmp_path / 'runs'}"]
    overrides.append("--data.eval_batch_size=100")  # fast_dev_run validates one batch: 100 images tell enough
    printed = resolver.dump(config, overrides)
    (tmp_path / "printed.yaml").write_text(printed)
    assert yaml.safe_load(resolver.dump(tmp_path / "printed.yaml")) == yaml.safe_load(printed)

    record = tmp_path / "fit.json"
    cli, _ = call_cli(["fit", "-c", str(config), *overrides, "--trainer.fast_dev_run=true",
                       "--trainer.callbacks+=tests.fault_callbacks.RecordFit", f"--trainer.callbacks.out={record}"])
    fit = json.loads(record.read_text())  # written at the end of the fit: it ran to the end
    # fast_dev_run: one training batch, so one step per optimizer (a GAN steps two, one per player)
    assert 1 <= fit["optimizer_steps"] <= 2 and fit["global_step"] == fit["optimizer_steps"], fit
    assert fit["grads_finite"] and fit["grads_nonzero"] and fit["changed"], fit
    assert any(k.startswith("val/") for k in fit["metrics"]), fit["metrics"]  # and it validated
    assert all(math.isfinite(v) for v in fit["metrics"].values()), fit["metrics"]
    model = cli.model
    assert isinstance(model, Model) and isinstance(model.optim, Optim) and model.monitor[1] in ("min", "max")
    runs = tmp_path / "runs"  # fast_dev_run writes no checkpoint or log; figures at most, and no empty folder
    assert not [d for d in runs.rglob("*") if d.is_dir() and not any(d.iterdir())]

    ckpt = tmp_path / "model.ckpt"
    cli.trainer.save_checkpoint(ckpt)
    model.trainer = None  # a step by hand, outside the Trainer's loops
    torch.manual_seed(0)
    model.train()
    x, y = torch.rand(4, 1, 28, 28), torch.arange(4)  # pixels in [0, 1]: a cross-entropy AE's targets must be
    model.zero_grad()
    loss = model.training_step((x, y), 0)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert not missing, f"no gradient reaches {missing}"

    reloaded = L.LightningModule.load_from_checkpoint(ckpt, map_location="cpu").eval()  # class from the checkpoint
    built = resolver.instantiate_model(yaml.safe_load(printed)["model"])  # the model the printed config builds
    built.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"])
    built.eval()
    assert type(reloaded) is type(built)
    with torch.no_grad():
        torch.manual_seed(0)
        a = leaves(reloaded(x))
        torch.manual_seed(0)
        b = leaves(built(x))
    assert len(a) == len(b) > 0 and all(torch.isfinite(t).all() for t in a)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    if hasattr(built, "head"):
        assert a[0].shape == (4, 10)

    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run_cli("summarize", "-c", str(config), *prerequisite_runs(config))
    out = capsys.readouterr()
    assert e.value.code == 0, out.err
    assert "receptive field" in out.out and "DIFFERS" not in out.out
    assert f"{sum(p.numel() for p in built.parameters()):,} in the model" in out.out
