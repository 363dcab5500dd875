"""The vectorised AuctionGym engine against a plain per-round loop, AuctionGym's world, bidders."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from adsim.env.engine import AuctionEngine, AuctionGymWorld, draw_participants
from adsim.errors import ConfigError
from adsim.policies.auctiongym_bidders import EmpiricalShadedBidder, bidders_from_config


def _cfg(allocation="SecondPrice", bidder=None, copies=6, k=2, seed=0):
    return {
        "random_seed": seed, "num_runs": 1, "num_iter": 3, "rounds_per_iter": 1000,
        "num_participants_per_round": k, "embedding_size": 5, "embedding_var": 1.0,
        "obs_embedding_size": 4, "allocation": allocation,
        "agents": [{"name": "A", "num_copies": copies, "num_items": 12,
                    "allocator": {"type": "OracleAllocator", "kwargs": {}},
                    "bidder": bidder or {"type": "TruthfulBidder", "kwargs": {}}}],
    }


SHADED = {"type": "EmpiricalShadedBidder", "kwargs": {"gamma_sigma": 0.02, "init_gamma": 1.0}}


def reference_loop(world, bidders, seed, n, round0=0):
    """One Python iteration per round, AuctionGym's ``simulate_opportunity`` written plainly,
    drawing from the same streams as the engine (contexts, participants, clicks; bidders' own)."""
    ctx_rng, part_rng, click_rng = (np.random.default_rng(s)
                                    for s in np.random.SeedSequence(seed).spawn(3))
    n_agents, k = world.n_agents, world.n_participants
    rows = []
    for t in range(n):
        x = np.concatenate([ctx_rng.normal(0.0, world.embedding_var, world.embedding_size), [1.0]])
        u = part_rng.random(k)
        parts: list[int] = []
        for j in range(k):
            r = int(u[j] * (n_agents - j))
            for p in sorted(parts):
                if r >= p:
                    r += 1
            parts.append(r)
        bids, recs = [], []
        for a in parts:
            neg = -world.items[a]
            z = neg[:, 0] * x[0]
            for j in range(1, neg.shape[1]):
                z = z + neg[:, j] * x[j]
            ctr = 1.0 / (1.0 + np.exp(z))
            ev = ctr * world.values[a]
            item = int(np.argmax(ev))
            b = float(bidders[a].bid(np.array([world.values[a, item]]), np.array([ctr[item]]),
                                     x[None])[0])
            bids.append(b)
            recs.append(dict(round=round0 + t, agent=a, item=item, estimated_ctr=ctr[item],
                             value=world.values[a, item], bid=b, best_expected_value=ev[item],
                             true_ctr=ctr[item], context=x))
        win = int(np.argmax(bids))
        second = sorted(bids, reverse=True)[1]
        price = second if world.mechanism == "second_price" else bids[win]
        click = click_rng.random() < recs[win]["true_ctr"]
        for i, rec in enumerate(recs):
            rec.update(price=price, second_price=second if i == win else 0.0,
                       outcome=bool(click) and i == win, won=i == win)
            rows.append(rec)
    return rows


@pytest.mark.parametrize("allocation,bidder,k", [
    ("SecondPrice", None, 2), ("FirstPrice", SHADED, 2), ("SecondPrice", None, 3),
])
def test_engine_records_equal_per_round_loop_exactly(allocation, bidder, k):
    cfg = _cfg(allocation, bidder, k=k)
    world = AuctionGymWorld.from_config(cfg)
    eng = AuctionEngine(world, bidders_from_config(cfg, 7), seed=3)
    n = 700
    table = eng.run(n, records=True).records.to_arrow().to_pydict()
    ref = reference_loop(world, bidders_from_config(cfg, 7), 3, n)
    assert len(table["agent"]) == len(ref) == n * k
    for i, want in enumerate(ref):
        for key in ("round", "agent", "item", "estimated_ctr", "value", "bid",
                    "best_expected_value", "true_ctr", "price", "second_price", "outcome", "won"):
            assert table[key][i] == want[key], (i, key, table[key][i], want[key])
        ctx = [table[f"x_{j}"][i] for j in range(6)]
        assert ctx == want["context"].tolist(), i


def test_totals_equal_records_and_do_not_depend_on_records_flag():
    cfg = _cfg("FirstPrice", SHADED)
    world = AuctionGymWorld.from_config(cfg)
    a = AuctionEngine(world, bidders_from_config(cfg, 1), seed=2).run(5000, records=True)
    b = AuctionEngine(world, bidders_from_config(cfg, 1), seed=2).run(5000, records=False)
    assert b.records is None
    t = a.records.to_arrow().to_pandas()
    won = t[t.won]
    assert len(won) == 5000 and a.totals.revenue == pytest.approx(won.price.sum(), rel=1e-12)
    assert a.totals.clicks == int(won.outcome.sum()) == b.totals.clicks
    gross = (won.value * won.outcome).groupby(won.agent).sum().reindex(range(6), fill_value=0)
    np.testing.assert_allclose(a.totals.gross_utility, gross.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(a.totals.net_utility,
                               a.totals.gross_utility - a.totals.spend, rtol=1e-12)
    np.testing.assert_array_equal(a.totals.wins, b.totals.wins)
    assert a.totals.revenue == b.totals.revenue


def test_world_is_auctiongyms_market_for_the_same_config():
    """Numbers printed by AuctionGym's own ``parse_config('config/SP_Oracle.json')`` (amzn/
    auction-gym 62216d8, numpy 2.x): first agent's first ad, its first values, last ad."""
    cfg = _cfg()
    w = AuctionGymWorld.from_config(cfg)
    assert w.items[0, 0].tolist() == [
        0.1257302210933933, -0.1321048632913019, 0.6404226504432821, 0.10490011715303971,
        -0.535669373161111, -3.971837416611112]
    assert w.values[0, :3].tolist() == [0.8394230402279229, 1.6482206202765934, 1.3355888992224423]
    assert w.items[-1, -1].tolist() == [
        -0.049755760296968106, -0.3674025993780988, 0.2187859889352313, 0.8448887803757161,
        0.9933362044496503, -3.652348965689021]
    assert float(w.values[-1, -1]) == 0.9237579108490325
    assert w.names[0] == "A 1" and w.names[-1] == "A 6"
    no_icpt = AuctionGymWorld.from_config(cfg, intercept=False)
    assert no_icpt.items.shape == (6, 12, 5) and not no_icpt.intercept


def test_clicks_and_revenue_per_round_in_auctiongyms_range():
    """SP_Oracle world: AuctionGym's loop gives ≈0.57 clicks and ≈0.41 revenue per round
    (``benchmarks/auction_vs_auctiongym.py``); the old intercept-free kernel world gave 0.89/1.09."""
    cfg = _cfg()
    eng = AuctionEngine(AuctionGymWorld.from_config(cfg), bidders_from_config(cfg, 0), seed=0)
    tot = eng.run(100_000, records=False).totals
    assert abs(tot.clicks / 1e5 - 0.567) < 0.01
    assert abs(tot.revenue / 1e5 - 0.412) < 0.01


def test_learning_bidder_updates_between_batches_like_auctiongym():
    cfg = _cfg("FirstPrice", SHADED)
    world = AuctionGymWorld.from_config(cfg)
    bidders = bidders_from_config(cfg, 4)
    eng = AuctionEngine(world, bidders, seed=5)
    res = eng.run(3000, records=True)
    before = [copy.deepcopy(b) for b in bidders]
    batches = eng.agent_batches(res.records)
    eng.update_bidders(res)
    for a, (b0, b1, batch) in enumerate(zip(before, bidders, batches)):
        gammas = np.concatenate(b0._gammas)
        assert b1.gamma == pytest.approx(_auctiongym_update(gammas, batch), abs=1e-12), a
        assert b1.history == [1.0, b1.gamma]
    assert any(b.gamma < 0.99 for b in bidders)  # shading learnt in a first-price auction
    # the next batch bids around the new γ, and every batch updates again
    eng.run_iterations(2, 2000)
    assert all(len(b.history) == 4 for b in bidders)


def _auctiongym_update(gammas, batch):
    """AuctionGym ``EmpiricalShadedBidder.update`` (plot=False) as it is written there."""
    values, outcomes, prices, won = batch.value, batch.outcome, batch.price, batch.won
    utilities = np.zeros_like(values)
    utilities[won] = values[won] * outcomes[won] - prices[won]
    min_gamma, max_gamma = np.min(gammas), np.max(gammas)
    num_buckets = int((max_gamma - min_gamma) // .005) + 1
    buckets = np.linspace(min_gamma, max_gamma, num_buckets)
    x, mean, se = [], [], []
    lo = buckets[0]
    for hi in buckets[1:]:
        x.append((hi - lo) / 2.0 + lo)
        mask = np.logical_and(gammas < hi, lo <= gammas)
        m = len(utilities[mask])
        if m > 1:
            mean.append(utilities[mask].mean())
            se.append(np.std(utilities[mask]) / np.sqrt(m))
        else:
            mean.append(np.nan)
            se.append(np.nan)
        lo = hi
    lcb = np.asarray(mean) - 1.96 * np.asarray(se)
    best = len(x) - np.nanargmax(lcb[::-1]) - 1
    return float(min(max(x[best], 0.0), 1.0))


def test_shaded_bidder_draws_around_gamma():
    b = EmpiricalShadedBidder(np.random.default_rng(0), gamma_sigma=0.02, init_gamma=0.7)
    v, c = np.ones(20_000), np.full(20_000, 0.5)
    g = b.bid(v, c, np.zeros((20_000, 6))) / 0.5
    assert abs(g.mean() - 0.7) < 0.002 and abs(g.std() - 0.02) < 0.002


def test_participants_are_distinct_and_uniform():
    u = np.random.default_rng(0).random((60_000, 3))
    p = draw_participants(u, 6)
    assert (np.sort(p, axis=1)[:, 1:] != np.sort(p, axis=1)[:, :-1]).all()
    share = np.bincount(p.ravel(), minlength=6) / p.size
    assert np.abs(share - 1 / 6).max() < 0.01


@pytest.mark.parametrize("mutate,msg", [
    (lambda c: c.update(allocation="Vickrey"), "allocation: 'Vickrey' is not supported"),
    (lambda c: c.update(num_participants_per_round=9), "num_participants_per_round must be in"),
    (lambda c: c.pop("embedding_size"), "missing field 'embedding_size'"),
    (lambda c: c["agents"][0]["bidder"].update(type="PolicyLearningBidder"),
     "agents[0].bidder.type: 'PolicyLearningBidder' is not supported"),
    (lambda c: c["agents"][0]["allocator"].update(type="PyTorchLogisticRegressionAllocator"),
     "agents[0].allocator.type"),
    (lambda c: c["agents"][0]["bidder"].update(type="EmpiricalShadedBidder", kwargs={"sigma": 1}),
     "agents[0].bidder.kwargs"),
])
def test_config_errors_name_the_field(mutate, msg):
    cfg = _cfg()
    mutate(cfg)
    with pytest.raises(ConfigError, match=None) as err:
        AuctionGymWorld.from_config(cfg)
        bidders_from_config(cfg)
    assert msg in str(err.value)


def test_fast_kernel_on_auctiongyms_market_matches_engine():
    """The totals-only kernel simulates the same market (intercepts included) as the engine."""
    from adsim.env.engine import SP_ORACLE
    from adsim.env.fastpath import SecondPriceOracleSim

    world = AuctionGymWorld.from_config(SP_ORACLE)
    n = 200_000
    eng = AuctionEngine(world, bidders_from_config(SP_ORACLE, 0), seed=1).run(n, records=True)
    tot = SecondPriceOracleSim.from_world(world).simulate(n, np.random.default_rng(2))
    price = eng.records.price[:, 0]
    click = eng.records.outcome.any(axis=1)
    for got, x in ((tot.revenue / n, price), (tot.clicks / n, click)):
        assert abs(got - x.mean()) < 4 * x.std() * np.sqrt(2 / n), (got, x.mean())
    np.testing.assert_allclose(tot.wins / n, eng.totals.wins / n, atol=0.01)


def test_records_write_parquet_round_trip(tmp_path):
    import pyarrow.parquet as pq

    cfg = _cfg()
    eng = AuctionEngine(AuctionGymWorld.from_config(cfg), bidders_from_config(cfg, 0), seed=0)
    rec = eng.run(500).records
    rec.write_parquet(tmp_path / "rounds.parquet")
    back = pq.read_table(tmp_path / "rounds.parquet")
    assert back.equals(rec.to_arrow()) and back.num_rows == 1000
    assert [p.name for p in tmp_path.iterdir()] == ["rounds.parquet"]  # no temp file left
    nxt = eng.run(10).records.to_arrow()
    assert nxt.column("round")[0].as_py() == 500  # global round index continues


def test_long_runs_in_pieces_equal_one_piece():
    cfg = _cfg("FirstPrice", SHADED, k=3)
    world = AuctionGymWorld.from_config(cfg)
    one = AuctionEngine(world, bidders_from_config(cfg, 1), seed=4, max_batch=10_000).run(2500)
    pieces = AuctionEngine(world, bidders_from_config(cfg, 1), seed=4, max_batch=700).run(2500)
    assert one.records.to_arrow().equals(pieces.records.to_arrow())
    assert one.totals.revenue == pytest.approx(pieces.totals.revenue, rel=1e-12)
    np.testing.assert_array_equal(one.totals.wins, pieces.totals.wins)
    lean = AuctionEngine(world, bidders_from_config(cfg, 1), seed=4, max_batch=700)
    res = lean.run(2500, records=False)
    assert res.records is None and res.totals.clicks == one.totals.clicks
    lean.update_bidders(res)  # learning bidders still get every row
    assert all(len(b.history) == 2 for b in lean.bidders)
