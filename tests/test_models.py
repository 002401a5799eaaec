"""One test over every model config: output shape, finite outputs, a gradient for every trainable parameter."""

from __future__ import annotations

import pytest
import torch

from dlmnist.config import model_from_config

from .conftest import EXPERIMENT_CONFIGS, config_id


@pytest.mark.parametrize("config", EXPERIMENT_CONFIGS, ids=config_id)
def test_model_forward_backward(config):
    torch.manual_seed(0)
    model = model_from_config(config)
    x = torch.randn(4, 1, 28, 28)
    y = torch.arange(4)
    model.train()
    loss = model._shared_step((x, y), "train") if hasattr(model, "_shared_step") else model.training_step((x, y), 0)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert not missing, f"no gradient reaches {missing}"
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert torch.isfinite(out).all()
    if hasattr(model, "head"):
        assert out.shape == (4, 10)
