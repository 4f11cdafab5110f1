"""Lesson 00: normalize_pixels."""

import torch
import torchvision.transforms.functional as TF

from resnet_tutorial.data import MEAN, STD

from . import right, wrong


@right("float() / 255, then (x - MEAN) / STD")
def normalize_pixels(images):
    x = images.float() / 255
    return (x - MEAN) / STD


@right("chained tensor methods")
def normalize_pixels(images):
    return images.to(torch.float32).div(255.0).sub(MEAN).div(STD)


@right("uint8 / 255.0 promotes to float32 by itself")
def normalize_pixels(images):
    return (images / 255.0 - MEAN) / STD


@right("torchvision's normalize on the scaled batch")
def normalize_pixels(images):
    return TF.normalize(images.float() / 255, [MEAN], [STD])


@right("float64 intermediate, float32 at the end")
def normalize_pixels(images):
    x = images.double() / 255.0
    return ((x - MEAN) / STD).float()


@wrong("forgot to scale 0..255 to 0..1", mistake="no_scale")
def normalize_pixels(images):
    return (images.float() - MEAN) / STD


@wrong("the batch's own mean and std", mistake="own_stats")
def normalize_pixels(images):
    x = images.float() / 255
    return (x - x.mean()) / x.std()


@wrong("subtracted the mean only", mistake="no_std")
def normalize_pixels(images):
    return images.float() / 255 - MEAN


@wrong("divided by STD squared", mistake="variance")
def normalize_pixels(images):
    return (images.float() / 255 - MEAN) / STD**2


@wrong("operator precedence: x - MEAN / STD", mistake="precedence")
def normalize_pixels(images):
    x = images.float() / 255
    return x - MEAN / STD


@wrong("MEAN and STD swapped", mistake="swapped")
def normalize_pixels(images):
    x = images.float() / 255
    return (x - STD) / MEAN


@wrong("multiplied by STD", mistake="times_std")
def normalize_pixels(images):
    return (images.float() / 255 - MEAN) * STD


@wrong("the usual 0.5 / 0.5 instead of the data set's constants", mistake="half")
def normalize_pixels(images):
    return (images.float() / 255 - 0.5) / 0.5


@wrong("left as float64", mistake="wrong_dtype")
def normalize_pixels(images):
    return (images.double() / 255 - MEAN) / STD


@wrong("plain 0..1 scaling, no standardization", mistake="scale_only")
def normalize_pixels(images):
    return images.float() / 255
