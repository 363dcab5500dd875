"""Policies: contextual bandits (which ad to show) and, later, bidding policies."""
