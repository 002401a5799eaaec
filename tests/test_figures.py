"""Image tiles and grids (torchvision's make_grid underneath): each image in its cell, gray lines between."""

from __future__ import annotations

import torch

from dlmnist.utils.figures import figure_png, tile
from dlmnist.utils.latent_figures import image_grid_figure


def test_tile_puts_image_i_at_row_i_div_ncols_and_column_i_mod_ncols():
    images = torch.rand(13, 1, 28, 28) * 1.4 - 0.2  # outside [0, 1] too: clamped
    out = tile(images, ncols=5)
    assert out.shape == (3 * 29 - 1, 5 * 29 - 1)
    for i, img in enumerate(images[:, 0].clamp(0, 1)):
        r, c = divmod(i, 5)
        assert torch.equal(out[r * 29 : r * 29 + 28, c * 29 : c * 29 + 28], img)
    assert (out[28, :] == 0.5).all() and (out[:, 28] == 0.5).all()  # the lines between tiles
    assert (out[2 * 29 :, 3 * 29 :] == 0.5).all()  # the two empty cells of the last row


def test_image_grid_figure_draws_one_picture_with_its_row_labels():
    fig = image_grid_figure(torch.rand(16, 1, 28, 28), 2, "inputs and reconstructions", ["input", "recon"])
    assert len(fig.axes) == 1 and [t.get_text() for t in fig.axes[0].texts] == ["input", "recon"]
    assert figure_png(fig).startswith(b"\x89PNG")
