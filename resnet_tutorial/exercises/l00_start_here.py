"""Lesson 00's exercise: normalize the FashionMNIST pixels."""

from __future__ import annotations

import torch

from ..data import MEAN, STD, normalize
from .catalogue import Case, Exercise, Mistake, register
from .cases import uint8


def normalize_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255, N×1×H×W → float32 ``(x / 255 − MEAN) / STD`` with the training set's constants."""
    return normalize(images)


def _normalize_family(images, *, flags=frozenset()):
    x = images.float() if "no_scale" in flags else images.float() / 255
    if "scale_only" in flags:
        return x
    if "half" in flags:
        return (x - 0.5) / 0.5
    if "inverse" in flags:
        return x * STD + MEAN
    mean, std = (x.mean(), x.std()) if "own_stats" in flags else (MEAN, STD)
    if "swapped" in flags:
        mean, std = std, mean
    if "no_std" in flags:
        return x - mean
    if "precedence" in flags:
        return x - mean / std
    if "times_std" in flags:
        return (x - mean) * std
    return (x - mean) / (std * std if "variance" in flags else std)


register(Exercise(
    "normalize_pixels", "00", "Normalize FashionMNIST pixels", normalize_pixels,
    cases=[
        Case("two random 28×28 images", lambda: ((uint8(0, 2, 1, 28, 28),), {})),
        Case("a black and a white 4×4 image", lambda: ((torch.stack([torch.zeros(1, 4, 4, dtype=torch.uint8),
                                                                      torch.full((1, 4, 4), 255, dtype=torch.uint8)]),), {})),
        Case("one tiny 3×5 image", lambda: ((uint8(1, 1, 1, 3, 5),), {})),
    ],
    mistakes=[
        Mistake("no_scale", "You subtracted MEAN and divided by STD without first dividing the pixels by 255. MEAN "
                            "and STD are for pixels scaled to 0…1: use images.float() / 255 first."),
        Mistake("own_stats", "You normalized with this batch's own mean and standard deviation. Use the training "
                             "set's constants MEAN and STD for every batch and every split, so the network always sees "
                             "inputs scaled the same way."),
        Mistake("no_std", "You subtracted MEAN but did not divide by STD: the result has mean 0 but the pixels' "
                          "spread (about 0.35), not 1."),
        Mistake("variance", "You divided by STD² (the variance) instead of STD: standardizing divides by the "
                            "standard deviation."),
        Mistake("precedence", "Operator precedence: x - MEAN / STD divides only MEAN by STD. Put the subtraction in "
                              "parentheses: (x - MEAN) / STD."),
        Mistake("swapped", "MEAN and STD are swapped: subtract the mean (MEAN ≈ 0.286), then divide by the standard "
                           "deviation (STD ≈ 0.353)."),
        Mistake("times_std", "You multiplied by STD: standardizing *divides* by the standard deviation, "
                             "(x − MEAN) / STD."),
        Mistake("half", "You used 0.5 and 0.5, the constants that map 0…1 to −1…1. The exercise asks for the "
                        "FashionMNIST training set's MEAN and STD, so that the result has mean 0 and std 1."),
        Mistake("inverse", "This is the inverse, x · STD + MEAN, which turns normalized values back into pixels: "
                           "normalizing subtracts MEAN and divides by STD."),
        Mistake("scale_only", "You scaled the pixels to 0…1 but did not standardize them: subtract MEAN and divide by "
                              "STD as well."),
    ],
    hints=["Three steps: turn the uint8 tensor into floats, scale 0…255 to 0…1, then (x − MEAN) / STD.",
           "images.float() / 255 gives floats in 0…1; MEAN and STD are imported from resnet_tutorial.data."],
    family=_normalize_family, keeps_inputs=True,
))
