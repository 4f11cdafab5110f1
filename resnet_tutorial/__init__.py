"""resnet_tutorial: the tested package behind the ResNet lesson series.

The library, one job per module (docs/DESIGN.md has the whole map):

* :mod:`resnet_tutorial.device`       where to compute and in what precision
* :mod:`resnet_tutorial.data`         FashionMNIST offline (Debian files, checksums), loaders, subsets
* :mod:`resnet_tutorial.blocks`       residual blocks: the posts' blocks and one configurable block
* :mod:`resnet_tutorial.models`       ResNets, plain twins, the posts' networks; ``create_model``
* :mod:`resnet_tutorial.bn`           BatchNorm2d written from its formulas
* :mod:`resnet_tutorial.diagnostics`  shapes, parameter/FLOP counts, gradient and activation statistics
* :mod:`resnet_tutorial.train`        ``fit`` / ``train_steps`` / ``evaluate`` / ``predict``
* :mod:`resnet_tutorial.checkpoints`  atomic checkpoints, exact resume, ``load_model``
* :mod:`resnet_tutorial.metrics`, :mod:`resnet_tutorial.plots`, :mod:`resnet_tutorial.distributed`,
  :mod:`resnet_tutorial.degradation`

Lesson NN's own demos and explorers: :mod:`resnet_tutorial.lessons` (``lNN_<name>``).
The app side: ``widgets`` (explorers), ``config`` (FAST mode), ``cli``,
``executor`` (headless notebooks), ``exercises`` ("Your turn" checks).
"""

__version__ = "0.1.0"
