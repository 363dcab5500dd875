"""Policies: contextual bandits (:mod:`~adsim.policies.bandits`, which ad to show), budget-paced
bidding (:mod:`~adsim.policies.bidding`: dual pacing, PID, bid shading, CPA, Thompson + λ) and RL
agents (:mod:`~adsim.policies.rl`). They implement the protocols of :mod:`adsim.env.types`
(re-exported by :mod:`~adsim.policies.base`); :func:`~adsim.policies.factory.make_bidding_policy`
builds any bidder of the one bidder vocabulary (:data:`adsim.config.BidderPolicyConfig`)."""
