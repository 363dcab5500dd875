"""Run AuctionGym's own loop with updates between iterations and report what it produced.

Not part of adsim: ``benchmarks/auction_vs_auctiongym.py`` runs this file with AuctionGym's
Python (its scratch venv), in AuctionGym's source folder, so that ``import main`` is AuctionGym's
``src/main.py``. It builds the market, agents and auction with AuctionGym's own
``parse_config`` / ``instantiate_agents`` / ``instantiate_auction`` (as its ``bench_loop.py`` and
``main.py`` do), then for each iteration times ``rounds_per_iter`` calls of
``Auction.simulate_opportunity`` and, separately, every agent's ``update`` (``plot=False``), reads
revenue, clicks and net/gross utility from AuctionGym's own agents and logs, and clears them as
``main.py`` does. Output: one JSON object on stdout.

Usage (from AuctionGym's folder): ``python PATH/auctiongym_driver.py CONFIG ROUNDS ITERS``
"""

import json
import sys
import time

sys.path.insert(0, "src")

import main as ag  # noqa: E402  (AuctionGym's src/main.py)
import numpy as np  # noqa: E402


def _log_row(opp):
    return {"context": [float(v) for v in opp.context], "item": int(opp.item),
            "estimated_CTR": float(opp.estimated_CTR), "value": float(opp.value),
            "bid": float(opp.bid), "best_expected_value": float(opp.best_expected_value),
            "true_CTR": float(opp.true_CTR), "price": float(opp.price),
            "second_price": float(opp.second_price), "outcome": int(opp.outcome),
            "won": bool(opp.won)}


def main():
    cfg_path, rounds, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    (rng, config, agent_configs, agents2items, agents2item_values, _runs, max_slots, emb,
     emb_var, obs_emb) = ag.parse_config(cfg_path)
    agents = ag.instantiate_agents(rng, agent_configs, agents2item_values, agents2items)
    auction, *_ = ag.instantiate_auction(rng, config, agents2items, agents2item_values, agents,
                                         max_slots, emb, emb_var, obs_emb)
    names = [a.name for a in agents]
    out = {"config": cfg_path, "rounds_per_iter": rounds, "num_iter": iters,
           "items": [agents2items[n].tolist() for n in names],
           "values": [agents2item_values[n].tolist() for n in names], "iterations": []}
    # a few rounds, not timed, to show the per-round records AuctionGym keeps
    sample = []
    for _ in range(2):
        before = [len(a.logs) for a in agents]
        auction.simulate_opportunity()
        sample.append([dict(_log_row(a.logs[-1]), agent=i) for i, a in enumerate(agents)
                       if len(a.logs) > before[i]])
    out["sample_rounds"] = sample
    for a in agents:
        a.clear_utility()
        a.clear_logs()
    auction.clear_revenue()
    for it in range(iters):
        t0 = time.perf_counter()
        for _ in range(rounds):
            auction.simulate_opportunity()
        t_rounds = time.perf_counter() - t0
        won_prices = np.array([o.price for a in agents for o in a.logs if o.won])
        won_clicks = np.array([o.outcome for a in agents for o in a.logs if o.won], float)
        row = {"seconds_rounds": t_rounds, "rounds": rounds, "revenue": auction.revenue,
               "revenue_sq": float((won_prices ** 2).sum()), "clicks": float(won_clicks.sum()),
               "n_won": int(won_prices.size),
               "net": [a.net_utility for a in agents], "gross": [a.gross_utility for a in agents]}
        t0 = time.perf_counter()
        for a in agents:
            a.update(iteration=it, plot=False)
        row["seconds_update"] = time.perf_counter() - t0
        row["gamma"] = [getattr(a.bidder, "prev_gamma", None) for a in agents]
        for a in agents:
            a.clear_utility()
            a.clear_logs()
        auction.clear_revenue()
        out["iterations"].append(row)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
