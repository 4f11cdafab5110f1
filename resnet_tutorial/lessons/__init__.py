"""One module per lesson notebook, named like it: ``l03_residual_block`` is ``03_residual_block.ipynb``.

Every explorer and demo that only one lesson uses lives in that lesson's
module; the library (everything outside this package, ``widgets``, ``config``,
``cli`` and ``executor``) never imports them.
"""
