"""ViT: the Classifier with a VisionTransformer encoder whose architecture is given as the model's own arguments.

Why a thin subclass: the training step, metrics (train/acc, val/acc, test/acc, losses), confusion matrix,
predictions and optimizer are the Classifier's, unchanged. What the subclass adds is that the transformer's
shape (``patch_size``, ``dim``, ``depth``, ...) are direct arguments (``--model.patch_size=7``) rather than a
nested ``encoder`` block, and an attention-map picture at test time. The encoder itself is a plain
``nn.Module`` (``dlmnist.nn.VisionTransformer``), so ``Classifier(encoder=VisionTransformer(...))`` works too.
"""

from __future__ import annotations

import torch

from dlmnist.models.classifier import Classifier
from dlmnist.models.optim import Optim
from dlmnist.nn.layers import Activation
from dlmnist.nn.transformer import Pool, VisionTransformer
from dlmnist.utils.checks import Fraction, NonNegativeInt, PositiveInt, check
from dlmnist.utils.figures import log_figure
from dlmnist.utils.latent_figures import attention_figure


class ViT(Classifier):
    """Vision Transformer classifier: patches -> ``depth`` blocks -> class token (or mean) -> head -> logits.

    Args:
        patch_size: side of the square patches; must divide 28.
        dim: model width.
        depth: number of transformer blocks.
        heads: attention heads per block.
        mlp_dim: hidden width of the blocks' MLPs.
        dropout: dropout inside the transformer.
        pool: ``cls`` token or ``mean`` over patch tokens.
        stem: channels of 3x3 convolutions before the patch embedding (a hybrid ViT; ``[]``: patches of pixels).
        attention_images: test images drawn in the attention-map picture (0 for none).
        head_hidden, head_activation, head_dropout, num_classes, optim: as in :class:`~dlmnist.models.Classifier`
            (here with weight decay 0.05 by default).
    """

    def __init__(
        self,
        patch_size: PositiveInt = 4,
        dim: PositiveInt = 64,
        depth: PositiveInt = 4,
        heads: PositiveInt = 4,
        mlp_dim: PositiveInt = 128,
        dropout: Fraction = 0.1,
        pool: Pool = "cls",
        stem: list[PositiveInt] = [],  # noqa: B006
        attention_images: NonNegativeInt = 6,
        head_hidden: list[PositiveInt] = [],  # noqa: B006
        head_activation: Activation = "relu",
        head_dropout: Fraction = 0.0,
        num_classes: PositiveInt = 10,
        optim: Optim = Optim(weight_decay=0.05),
    ) -> None:
        check(NonNegativeInt, attention_images=attention_images)
        super().__init__(
            encoder=VisionTransformer(
                patch_size=patch_size,
                dim=dim,
                depth=depth,
                heads=heads,
                mlp_dim=mlp_dim,
                dropout=dropout,
                pool=pool,
                stem=stem,
            ),
            head_hidden=head_hidden,
            head_activation=head_activation,
            head_dropout=head_dropout,
            num_classes=num_classes,
            optim=optim,
        )
        self._attention_batch: torch.Tensor | None = None

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every layer for images ``x`` (B, 1, 28, 28): ``depth`` tensors (B, heads, n, n)."""
        return self.encoder.attention_maps(x)

    def step(self, batch, stage, batch_idx: int) -> torch.Tensor:
        if stage == "test" and batch_idx == 0 and self.hparams.attention_images:
            self._attention_batch = batch[0][: self.hparams.attention_images]
        return super().step(batch, stage, batch_idx)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        x, self._attention_batch = self._attention_batch, None
        if x is not None and self.trainer.is_global_zero:
            self.eval()
            maps = [m.mean(dim=1).cpu() for m in self.attention_maps(x)]  # per layer (B, n, n), heads averaged
            log_figure(self.trainer, "test/attention", attention_figure(x.cpu(), maps, self.encoder.patches.grid))
