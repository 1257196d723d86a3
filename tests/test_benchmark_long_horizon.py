import numpy as np

from benchmarks.long_horizon import origins_of


def test_origins_hold_out_the_last_windows_while_a_horizon_of_context_remains():
    long, short = np.arange(100.0), np.arange(25.0)
    ctxs, ys = origins_of([long, short], h=20, origins=3)
    # long: cuts at 80, 60, 40; short: only the last window (5 steps of context is allowed for
    # the first origin, as with one origin, but no earlier window: fewer than 20 steps remain).
    assert [len(c) for c in ctxs] == [80, 60, 40, 5]
    assert [y[0] for y in ys] == [80.0, 60.0, 40.0, 5.0]
    assert all(len(y) == 20 for y in ys)
    for c, y in zip(ctxs, ys):
        assert c[-1] + 1 == y[0]  # each target follows its context
    one_ctx, one_y = origins_of([long, short], h=20, origins=1)
    assert [len(c) for c in one_ctx] == [80, 5]
