"""Lesson 09: adapt_conv1_weights, replace_head."""

import copy

import torch
from torch import nn

from . import right, wrong


# --------------------------------------------------------------------------- adapt_conv1_weights
@right("the lesson's solution")
def adapt_conv1_weights(rgb_weight, in_channels):
    summed = rgb_weight.sum(dim=1, keepdim=True)
    return summed.repeat(1, in_channels, 1, 1) / in_channels


@right("expand, then clone")
def adapt_conv1_weights(rgb_weight, in_channels):
    return (rgb_weight.sum(1, keepdim=True) / in_channels).expand(-1, in_channels, -1, -1).clone()


@right("torch.cat of copies")
def adapt_conv1_weights(rgb_weight, in_channels):
    one = rgb_weight.sum(dim=1, keepdim=True)
    return torch.cat([one / in_channels] * in_channels, dim=1)


@right("three times the mean is the sum")
def adapt_conv1_weights(rgb_weight, in_channels):
    return (3 * rgb_weight.mean(dim=1, keepdim=True) / in_channels).repeat(1, in_channels, 1, 1)


@right("a loop filling each new channel")
def adapt_conv1_weights(rgb_weight, in_channels):
    out, _, k1, k2 = rgb_weight.shape
    w = torch.empty(out, in_channels, k1, k2, dtype=rgb_weight.dtype)
    for c in range(in_channels):
        w[:, c] = (rgb_weight[:, 0] + rgb_weight[:, 1] + rgb_weight[:, 2]) / in_channels
    return w


@wrong("the mean of the colour filters", mistake="mean")
def adapt_conv1_weights(rgb_weight, in_channels):
    return rgb_weight.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels


@wrong("the red filter only", mistake="red_only")
def adapt_conv1_weights(rgb_weight, in_channels):
    return rgb_weight[:, :1].repeat(1, in_channels, 1, 1) / in_channels


@wrong("the full sum in every new channel", mistake="not_spread")
def adapt_conv1_weights(rgb_weight, in_channels):
    return rgb_weight.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)


@wrong("summed over the output filters (dim 0)", mistake="wrong_axis")
def adapt_conv1_weights(rgb_weight, in_channels):
    return rgb_weight.sum(dim=0, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels


@wrong("divided by 3 instead of in_channels", mistake="divided_by_3")
def adapt_conv1_weights(rgb_weight, in_channels):
    return rgb_weight.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) / 3


@wrong("one channel whatever in_channels says", mistake="one_channel_only")
def adapt_conv1_weights(rgb_weight, in_channels):
    return rgb_weight.sum(dim=1, keepdim=True)


# --------------------------------------------------------------------------- replace_head
@right("the lesson's solution")
def replace_head(model, num_classes):
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


@right("works on a copy: the caller's model is left as it was", )
def replace_head(model, num_classes):
    model = copy.deepcopy(model)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


@right("reads the weight's shape")
def replace_head(model, num_classes):
    features = model.fc.weight.shape[1]
    setattr(model, "fc", nn.Linear(features, num_classes))
    return model


@right("puts the model in eval mode for fine-tuning later")
def replace_head(model, num_classes):
    model.eval()
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


@wrong("512 typed in (ResNet-18's)", mistake="hardcoded_in_features")
def replace_head(model, num_classes):
    model.fc = nn.Linear(512, num_classes)
    return model


@wrong("2048 typed in (ResNet-50's)", mistake="hardcoded_in_features", defect="hard-coded 2048")
def replace_head(model, num_classes):
    model.fc = nn.Linear(2048, num_classes)
    return model


@wrong("nn.Linear's arguments swapped", mistake="swapped")
def replace_head(model, num_classes):
    model.fc = nn.Linear(num_classes, model.fc.in_features)
    return model


@wrong("returns the new layer", mistake="returns_layer")
def replace_head(model, num_classes):
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model.fc


@wrong("no return", mistake="no_return")
def replace_head(model, num_classes):
    model.fc = nn.Linear(model.fc.in_features, num_classes)


@wrong("resets every layer's weights", mistake="changed_backbone")
def replace_head(model, num_classes):
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


@wrong("changes fc.out_features only", mistake="attribute_only")
def replace_head(model, num_classes):
    model.fc.out_features = num_classes
    return model
