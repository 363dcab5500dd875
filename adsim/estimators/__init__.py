"""Off-policy estimators, reward models, intervals and diagnostics.

Modules: :mod:`~adsim.estimators.ope` (the estimators), :mod:`~adsim.estimators.registry`
(every estimator by name: the single source of names),
:mod:`~adsim.estimators.base` (result type, checks, base class),
:mod:`~adsim.estimators.intervals`, :mod:`~adsim.estimators.diagnostics`,
:mod:`~adsim.estimators.tuning` (SLOPE), :mod:`~adsim.estimators.slate`,
:mod:`~adsim.estimators.reward_models`, :mod:`~adsim.estimators.api` (one-call evaluation),
:mod:`~adsim.estimators.targets` (reading user tables), :mod:`~adsim.estimators.cli`
(``adsim ope``, ``adsim ope-validate``). Validation against the simulator's ground truth builds
worlds and policies, so it is an experiment: :mod:`adsim.experiments.ope_validation`.
"""
