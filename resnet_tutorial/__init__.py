"""resnet_tutorial: the tested package behind the ResNet lesson series.

Modules, one job each:

* :mod:`resnet_tutorial.data`     FashionMNIST offline (Debian files, checksums), loaders, subsets
* :mod:`resnet_tutorial.blocks`   residual blocks: the posts' blocks and one configurable block
* :mod:`resnet_tutorial.models`   ResNets, plain twins, the posts' networks; ``create_model``
* :mod:`resnet_tutorial.inspect`  shape tracing, parameter and FLOP counts, gradient norms
* :mod:`resnet_tutorial.bn`       BatchNorm2d written from its formulas
* :mod:`resnet_tutorial.gradients` depth experiments on vanishing/exploding gradients
* :mod:`resnet_tutorial.train`    ``fit``/``evaluate``/``predict`` with checkpoints
* :mod:`resnet_tutorial.plots`    figures for all of the above
* :mod:`resnet_tutorial.widgets`  explorers that redraw in place
"""

__version__ = "0.1.0"
