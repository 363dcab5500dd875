"""The library versions a run records in its ``results.json`` (what reproducing it needs)."""

from __future__ import annotations

import sys

__all__ = ["library_versions"]


def library_versions() -> dict[str, str]:
    """``{"adsim": …, "numpy": …, "scipy": …, "pandas": …, "scikit-learn": …, "python": …}``."""
    import numpy as np
    import pandas as pd
    import scipy
    import sklearn

    from adsim import __version__

    return {
        "adsim": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
        "pandas": pd.__version__, "scikit-learn": sklearn.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
    }
