"""detforge: an object-detection toolbox on PyTorch that reads MMDetection v2 configs.

The package is organised as in ``DESIGN.md``: :mod:`detforge.config` (the v2 config language),
:mod:`detforge.registry` (one registry per concept and :func:`~detforge.registry.build_module`),
and the command line in :mod:`detforge.cli`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
