"""The auction world: users, ads, ground-truth click models, logs and exact oracles."""
