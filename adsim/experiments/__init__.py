"""Experiments: scenario → results (runner), leaderboards, plots and reports."""
