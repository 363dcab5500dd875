"""Experiments: config → object builders (:mod:`~adsim.experiments.builders`), scenario → results
(runners), OPE validation against ground truth, leaderboards, plots and reports."""
