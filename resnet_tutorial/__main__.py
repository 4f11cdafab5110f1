"""``python -m resnet_tutorial ...``: see :mod:`resnet_tutorial.cli`."""

import sys

from .cli import main

sys.exit(main())
