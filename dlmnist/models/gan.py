"""GAN: a DCGAN-style generator and discriminator trained against each other (manual optimisation, two optimizers)."""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dlmnist.compat import attached_trainer
from dlmnist.models.base import Model, Stage
from dlmnist.models.optim import Optim, build_optimizer
from dlmnist.utils.checks import Fraction, NonNegativeInt, PositiveInt, check
from dlmnist.utils.figures import labelled_rows_figure, log_figure

Prior = Literal["normal", "uniform"]


class GAN(Model):
    """``generator(z)`` makes digits, ``discriminator(x)`` gives a logit of "real"; pixels in [0, 1].

    Use ``data.normalize: false`` (the generator's sigmoid output is compared with pixels in [0, 1]).

    Each training batch: one discriminator step on real images (target 1) and generated ones (target 0), then one
    generator step with the non-saturating loss ``-log D(G(z))`` (binary cross-entropy of D's logit on the fakes
    against 1), each with its own optimizer built from ``optim`` (manual optimisation). Logged per stage:
    ``d_loss``, ``g_loss``, ``d_acc_real`` and ``d_acc_fake`` (share of real / generated images the discriminator
    gets right; both near 0.5 means it cannot tell them apart). The first ``d_pretrain_steps`` training batches
    update the discriminator only (see the argument).

    After every validation epoch ``ReconstructionGrid`` draws real digits beside samples of a fixed batch of ``z``,
    and the GAN keeps the samples of the first ``SAMPLES_PER_ROW`` codes of that batch (in eval mode, as uint8:
    10 images per epoch, kept in the checkpoint) and writes ``figures/samples_over_training.png``: one row per
    validation so far, labelled with its epoch (counted from 0, as in ``metrics.csv``), the same codes in every row.

    Args:
        generator: code ``(B, z_dim)`` -> image ``(B, 1, 28, 28)`` in [0, 1], e.g. ``dlmnist.nn.ConvDecoder``.
        discriminator: image -> ``(B, 1)`` logit, e.g. ``dlmnist.nn.ConvEncoder`` with ``latent_dim=1`` and
            ``latent_activation=false``.
        optim: optimizer of both players (constant schedule only; Adam at 2e-4 is the DCGAN choice).
        adam_beta1: first-moment decay of Adam / AdamW for both players (DCGAN: 0.5; Adam's default 0.9 lets the
            two players' updates overshoot each other).
        z_dim: size of the code.
        prior: distribution of ``z``: ``normal`` N(0, I) or ``uniform`` on [-1, 1].
        ema_decay: keep an exponential moving average of the generator's weights and batch-norm statistics,
            updated after every generator step with this decay (``torch.optim.swa_utils.AveragedModel``), and draw
            every sample from it: the figures, ``sample``/``decode`` and the test's scores (Yazici et al. 2019,
            "The unusual effectiveness of averaging in GAN training"). Training is unchanged: the discriminator
            plays against the raw generator. None (the default): samples come from the raw generator.
        num_classes: a class-conditional GAN (Mirza & Osindero 2014) over this many classes: the generator reads
            ``z`` followed by the one-hot label (its input size ``z_dim + num_classes``), the discriminator the image
            followed by ``num_classes`` constant planes of the one-hot label (its ``in_channels`` ``1 + num_classes``).
            In training the fakes get the labels of the real batch beside them; samples (figures, ``sample``,
            ``decode``, the test's scores) cycle through the classes: sample ``i`` is of class ``i % num_classes``.
            None (the default): unconditional.
        d_pretrain_steps: pre-train the discriminator: in the first ``d_pretrain_steps`` training batches of the
            fit (counted across epochs) only the discriminator steps; the generator gets no gradient and no optimizer
            step (its fakes are still made in training mode, so batch-norm running statistics move), and ``g_loss``
            is still logged. 0 (the default): both players step from the first batch.

        score_classifier: a checkpoint of a classifier of this package (a path, or a glob such as
            ``runs/cnn/version_*/checkpoints/best.ckpt``: the newest match). ``dlmnist test`` then draws as many
            samples as there are test images and logs, under that classifier, ``test/classifier_score``,
            ``test/class_coverage``, ``test/min_class_share``, ``test/fid`` (to the test images) and
            ``test/real_classifier_score`` (of the test images: the value of a perfect generator). None: losses only.

    Sample quality with no download: ``dlmnist gan-score`` (:mod:`dlmnist.analysis.gan_score`): the classifier
    score, the share of samples per digit and the Fréchet distance to real digits in the feature space of a CNN
    checkpoint of this package, beside the same numbers of real digits.
    """

    monitor = (None, "max")  # no metric says which GAN is best: best.ckpt is the newest epoch (as the stacked AE)
    SAMPLES_PER_ROW = 10  # samples of the fixed z kept per validation for samples_over_training.png

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optim: Optim = Optim(lr=2e-4, name="adam", schedule="constant"),
        z_dim: PositiveInt = 64,
        prior: Prior = "normal",
        adam_beta1: Fraction = 0.5,
        d_pretrain_steps: NonNegativeInt = 0,
        ema_decay: Optional[Fraction] = None,
        num_classes: Optional[PositiveInt] = None,
        score_classifier: Optional[str] = None,
    ) -> None:
        super().__init__(optim=optim)
        if self.optim.schedule != "constant":
            raise ValueError(f"GAN trains with optim.schedule=constant only, got {self.optim.schedule!r}")
        check(Prior, prior=prior)
        check(Fraction, adam_beta1=adam_beta1)
        check(PositiveInt, z_dim=z_dim)
        check(NonNegativeInt, d_pretrain_steps=d_pretrain_steps)
        check(Fraction, ema_decay=ema_decay)
        check(PositiveInt, num_classes=num_classes)
        self.save_hparams(("generator", "discriminator"))
        self.automatic_optimization = False
        self.generator, self.discriminator = generator, discriminator
        self.generator_ema = None
        if ema_decay is not None:  # a copy of the generator, averaged; its own module so checkpoints hold it
            multi_avg_fn = get_ema_multi_avg_fn(ema_decay)
            self.generator_ema = AveragedModel(generator, multi_avg_fn=multi_avg_fn, use_buffers=True)
            self.generator_ema.requires_grad_(False)  # a copy no optimizer steps (and DDP must not wait for)
        self.register_buffer("fixed_z", self.sample_z(64, generator=torch.Generator().manual_seed(0)))
        self.samples_over_training: list[tuple[int, torch.Tensor]] = []  # (epoch, (10, 1, 28, 28) uint8) per val
        self.scorer = None  # a SampleScorer while a test with score_classifier runs

    def sample_z(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        device = None if generator is not None else self.device
        if self.hparams.prior == "normal":
            return torch.randn(n, self.hparams.z_dim, generator=generator, device=device)
        return torch.rand(n, self.hparams.z_dim, generator=generator, device=device) * 2 - 1

    def labels(self, n: int) -> Optional[torch.Tensor]:
        """The classes of ``n`` samples of a conditional GAN, ``0, 1, ..., num_classes - 1, 0, ...``; else None."""
        classes = self.hparams.num_classes
        return None if classes is None else torch.arange(n, device=self.fixed_z.device) % classes

    def one_hot(self, y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y.long(), self.hparams.num_classes).to(like.dtype)  # (B,) -> (B, num_classes)

    def generate(self, net: nn.Module, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Images of ``net`` (the generator or its average) for codes ``z``; a conditional GAN's of classes ``y``
        (None: :meth:`labels`)."""
        if self.hparams.num_classes is None:
            return net(z)
        y = self.labels(len(z)).to(z.device) if y is None else y
        return net(torch.cat([z, self.one_hot(y, z)], dim=1))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The discriminator's logit of "real", ``(B, 1, 28, 28)`` -> ``(B,)``; a conditional GAN's for the image
        being a real digit of class ``y`` (None: the class under which the image looks most real)."""
        if self.hparams.num_classes is None:
            return self.discriminator(x).flatten()
        if y is None:
            classes = torch.arange(self.hparams.num_classes, device=x.device)
            return torch.stack([self(x, c.expand(len(x))) for c in classes], dim=1).amax(dim=1)
        planes = self.one_hot(y, x)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.discriminator(torch.cat([x, planes], dim=1)).flatten()

    def predicts(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's probability that each image is real (N,): what :meth:`predict_images` returns."""
        return self(x).sigmoid()

    @property
    def sampler(self) -> nn.Module:
        """The generator that draws samples: the averaged one when ``ema_decay`` is set, else the trained one."""
        return self.generator if self.generator_ema is None else self.generator_ema.module

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.generate(self.sampler, z)  # (B, z_dim) -> (B, 1, 28, 28) in [0, 1]

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.decode(self.sample_z(n))  # (n, 1, 28, 28) in [0, 1]

    def pretraining_discriminator(self) -> bool:
        """Whether the current training batch is one of the first ``d_pretrain_steps`` of the fit."""
        trainer = attached_trainer(self)
        return trainer is not None and trainer.fit_loop.epoch_loop.total_batch_idx < self.hparams.d_pretrain_steps

    def step(self, batch, stage: Stage, batch_idx: int) -> torch.Tensor:
        x, y = batch
        y = None if self.hparams.num_classes is None else y  # the fakes are of the real batch's classes
        if stage == "test" and self.scorer is not None:
            self.scorer.add_real(x)
        training = stage == "train" and attached_trainer(self) is not None
        generator_steps = not (training and self.pretraining_discriminator())
        with torch.set_grad_enabled(torch.is_grad_enabled() and generator_steps):
            fake = self.generate(self.generator, self.sample_z(len(x)), y)
        d_real, d_fake = self(x, y), self(fake.detach(), y)
        bce = F.binary_cross_entropy_with_logits
        d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        if training:
            opt_g, opt_d = self.optimizers()
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            opt_d.step()
        d_on_fake = self(fake, y)  # after D's step: the generator plays against the updated discriminator
        g_loss = bce(d_on_fake, torch.ones_like(d_on_fake))  # non-saturating: -log D(G(z)), not log(1 - D(G(z)))
        if training and generator_steps:
            opt_g.zero_grad()
            self.manual_backward(g_loss)
            opt_g.step()
            if self.generator_ema is not None:
                self.generator_ema.update_parameters(self.generator)
        n = len(x)
        self.log_stage(stage, "d_loss", d_loss, prog_bar=True, batch_size=n)
        self.log_stage(stage, "g_loss", g_loss, prog_bar=True, batch_size=n)
        self.log_stage(stage, "d_acc_real", (d_real > 0).float().mean(), batch_size=n)
        self.log_stage(stage, "d_acc_fake", (d_fake < 0).float().mean(), batch_size=n)
        return d_loss.detach() + g_loss.detach() if training else d_loss + g_loss  # joint loss outside a Trainer

    def configure_optimizers(self):
        opts = [build_optimizer(self, net.parameters(), self.optim) for net in (self.generator, self.discriminator)]
        for group in (g for opt in opts for g in opt.param_groups if "betas" in g):
            group["betas"] = (self.hparams.adam_beta1, group["betas"][1])
        return opts  # [generator's, discriminator's]

    def reconstruction_panels(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Real digits beside samples of the fixed ``z`` (the same codes every epoch: the grids show progress)."""
        return [("real", x), ("samples (fixed z)", self.decode(self.fixed_z[: len(x)]))]

    @torch.no_grad()
    def on_validation_epoch_end(self) -> None:
        trainer = self.trainer
        if trainer.sanity_checking:
            return
        images = self.decode(self.fixed_z[: self.SAMPLES_PER_ROW]).clamp(0, 1).mul(255).round().byte().cpu()
        self.samples_over_training.append((trainer.current_epoch, images))
        if trainer.is_global_zero:
            rows = [(f"epoch {epoch}", pixels.float() / 255) for epoch, pixels in self.samples_over_training]
            title = f"samples of the same {self.SAMPLES_PER_ROW} codes z, one row per validation"
            if self.hparams.num_classes is not None:
                title += f"\n(digit i mod {self.hparams.num_classes} in column i, from 0)"
            log_figure(trainer, "samples_over_training", labelled_rows_figure(rows, title))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["gan_samples_over_training"] = list(self.samples_over_training)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.samples_over_training = list(checkpoint.get("gan_samples_over_training", []))

    def on_test_epoch_start(self) -> None:
        self.scorer = None
        if self.hparams.score_classifier:
            from dlmnist.models.classifier import Classifier
            from dlmnist.models.pretrained import resolve_checkpoint
            from dlmnist.sample_scores import SampleScorer

            path = resolve_checkpoint(self.hparams.score_classifier, "score_classifier")
            self.scorer = SampleScorer(Classifier.load_from_checkpoint(path, map_location=self.device))

    @torch.no_grad()
    def on_test_epoch_end(self) -> None:
        if self.scorer is None:
            return
        codes = torch.Generator().manual_seed(0)  # the same samples at every test of this checkpoint
        scores = self.scorer.scores(lambda n: self.decode(self.sample_z(n, generator=codes).to(self.device)))
        for name, value in scores.items():
            if name != "class_share":  # a list per class: gan-score's; the test logs numbers
                self.log(f"test/{name}", float(value))
        self.scorer = None
