"""The restricted number types of constructor arguments, and the one check of a value against them (or a Literal).

In a signature (``latent_dim: PositiveInt = 128``) jsonargparse's types make LightningCLI refuse a bad value before
anything is built, naming the key, the value and the restriction. They check nothing when the class is built in
Python (``ConvEncoder(latent_dim=0)``: a plain ``int`` passes), so the constructor calls :func:`check` with the same
type: one message, "NAME must be ALLOWED, got VALUE", for every argument of the package.
"""

from __future__ import annotations

from typing import Literal, get_args, get_origin

from jsonargparse.typing import (
    ClosedUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    restricted_number_type,
)

# a share that may be dropped but not all of it: dropout, input corruption, Adam's beta1
Fraction = restricted_number_type("Fraction", float, [(">=", 0.0), ("<", 1.0)], docstring="float restricted to [0, 1)")

ALLOWED = {
    PositiveInt: "a positive integer",
    NonNegativeInt: "an integer >= 0",
    PositiveFloat: "positive",
    NonNegativeFloat: ">= 0",
    ClosedUnitInterval: "in [0, 1]",
    OpenUnitInterval: "strictly between 0 and 1",
    Fraction: "in [0, 1)",
}

__all__ = [
    "ClosedUnitInterval",
    "Fraction",
    "NonNegativeFloat",
    "NonNegativeInt",
    "OpenUnitInterval",
    "PositiveFloat",
    "PositiveInt",
    "allowed",
    "check",
    "closed_range",
]


def closed_range(name: str, low: float, high: float, unit: str) -> type:
    """A float type restricted to ``[low, high]``, e.g. ``closed_range("Shift", 0, 14, "pixels")``."""
    kind = restricted_number_type(name, float, [(">=", low), ("<=", high)], docstring=f"{unit}, {low} to {high}")
    ALLOWED[kind] = f"a number in [{low}, {high}]"
    return kind


def allowed(kind: type) -> str:
    """What ``kind`` allows, in words: ``a positive integer``, ``a number in [0, 14]``, ``one of l1, mse, bce``."""
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(map(str, get_args(kind)))
    return ALLOWED[kind]


def _accepts(kind: type, value) -> bool:
    if get_origin(kind) is Literal:
        return value in get_args(kind)
    try:
        kind(value)
    except (TypeError, ValueError):
        return False
    return True


def check(kind: type, /, **values) -> None:
    """Raise ``ValueError("NAME must be ALLOWED, got VALUE")`` for the first value that ``kind`` refuses.

    ``kind`` is one of the restricted types above or a ``Literal`` of the allowed values (the type in the
    signature); ``None`` passes (an optional argument left out), and a list or tuple is checked entry by entry.
    """
    for name, value in values.items():
        if value is None:
            continue
        many = isinstance(value, (list, tuple))
        for v in value if many else (value,):
            if not _accepts(kind, v):
                what = f"{allowed(kind)} each, got {list(value)}" if many else f"{allowed(kind)}, got {value!r}"
                raise ValueError(f"{name} must be {what}")
