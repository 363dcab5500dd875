"""The auction world: users, ads, ground-truth click models, logs and exact oracles."""


def register_envs() -> None:
    """Register adsim's Gymnasium envs (``adsim/AdSelection-v0``, ``adsim/BudgetBidding-v0``).

    Imports gymnasium, so it is a function and not an import side effect of :mod:`adsim.env`.
    """
    from adsim.env.envs import register_envs as _register

    _register()
