"""The public Python API: lazy top-level names and Gymnasium registration on `import adsim`."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("order", ["adsim-first", "gymnasium-first"])
def test_gym_make_after_import_adsim(order: str) -> None:
    imports = "import adsim\nimport gymnasium as gym\n" if order == "adsim-first" else \
        "import gymnasium as gym\nimport adsim\n"
    code = imports + (
        "env = gym.make('adsim/AdSelection-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(type(env.unwrapped).__name__, 'adsim/BudgetBidding-v0' in gym.registry)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["AdSelectionEnv", "True"]


def test_module_colon_form() -> None:
    code = ("import gymnasium as gym\nenv = gym.make('adsim.env:adsim/BudgetBidding-v0')\n"
            "print(type(env.unwrapped).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "BudgetBiddingEnv"


def test_lazy_public_names() -> None:
    import adsim

    for name in adsim.__all__:
        assert getattr(adsim, name) is not None
    with pytest.raises(AttributeError):
        adsim.no_such_name  # noqa: B018
