"""Off-policy estimators and reward models."""
