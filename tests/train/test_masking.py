import pytest
import torch

from rexforge.train.masking import apply_patch_mask, contiguous_patch_mask


def _mask(seed, **kw):
    return contiguous_patch_mask(16, 40, torch.Generator().manual_seed(seed), **kw)


def test_mask_is_seeded_and_varies_per_sample():
    a, b = _mask(1, max_start_prob=0.3), _mask(1, max_start_prob=0.3)
    assert torch.equal(a, b)
    assert not torch.equal(a, _mask(2, max_start_prob=0.3))
    frac = a.float().mean(dim=1)
    assert a.any() and frac.unique().numel() > 1  # the probability differs per sample


def test_zero_probability_masks_nothing():
    assert not _mask(0, max_start_prob=0.0).any()


def test_runs_are_contiguous_and_bounded_with_single_start():
    # One forced start per row (prob 1 at column 0 only is not expressible) -> check runs of
    # length 1 when max_run=1: every masked patch then is its own start, no spill-over.
    m = _mask(3, max_start_prob=0.5, max_run=1)
    gen = torch.Generator().manual_seed(3)
    prob = torch.rand(16, 1, generator=gen) * 0.5
    torch.randint(1, 2, (16, 1), generator=gen)
    starts = torch.rand(16, 40, generator=gen) < prob
    assert torch.equal(m, starts)


def test_apply_masks_exactly_the_mask():
    tokens = torch.randn(16, 40, 8) + 5
    m = _mask(4, max_start_prob=0.3)
    out = apply_patch_mask(tokens, m)
    assert torch.all(out[m] == 0)  # values and mask channel: the masked token
    assert torch.equal(out[~m], tokens[~m])


def test_context_truncation_keeps_a_random_suffix_of_at_least_one_patch():
    from rexforge.train.objective import truncate_contexts

    context = torch.arange(1.0, 129.0).repeat(400, 1)  # [400, 128]
    gen = torch.Generator().manual_seed(0)
    out = truncate_contexts(context, 0.5, 32, gen)
    kept = (~torch.isnan(out)).sum(dim=1)
    cut = kept < 128
    assert 0.4 < cut.float().mean() < 0.6  # about half the windows are cut
    assert kept.min() >= 32
    # What stays is exactly the most recent part, unchanged.
    for row, k in zip(out, kept):
        assert torch.isnan(row[: 128 - k]).all()
        assert torch.equal(row[128 - k :], context[0, 128 - k :])
    assert torch.equal(truncate_contexts(context, 0.0, 32, gen), context)


def test_log_uniform_truncation_reaches_sub_patch_contexts():
    from rexforge.train.objective import truncate_contexts

    context = torch.arange(1.0, 513.0).repeat(4000, 1)  # [4000, 512]
    gen = torch.Generator().manual_seed(0)
    out = truncate_contexts(context, 1.0, 32, gen, min_length=4, log_uniform=True)
    kept = (~torch.isnan(out)).sum(dim=1).double()
    assert kept.min() >= 4 and kept.max() <= 512
    # log-uniform on [4, 513): each factor-2 band holds ~1/7 of the draws
    share_4_8 = ((kept >= 4) & (kept < 8)).double().mean()
    share_256_512 = ((kept >= 256) & (kept < 512)).double().mean()
    assert 0.11 < share_4_8 < 0.18 and 0.11 < share_256_512 < 0.18
    uniform = truncate_contexts(context, 1.0, 32, gen, min_length=4)
    kept_uniform = (~torch.isnan(uniform)).sum(dim=1).double()
    assert ((kept_uniform >= 4) & (kept_uniform < 8)).double().mean() < 0.02


def test_shortening_drops_whole_leading_patches_of_every_row_alike():
    from rexforge.train.objective import MaskingConfig, drop_leading_patches, window_tokens

    context = torch.arange(1.0, 129.0).repeat(3, 1)  # [3, 128]: 4 patches
    gen = torch.Generator().manual_seed(0)
    lengths = []
    for _ in range(400):
        out = drop_leading_patches(context, 0.5, 32, gen)
        assert torch.equal(out, context[:, 128 - out.shape[1] :])  # the most recent steps
        lengths.append(out.shape[1])
    lengths = torch.tensor(lengths)
    assert 0.4 < (lengths < 128).float().mean() < 0.6  # about half the batches
    assert set(lengths.tolist()) == {32, 64, 96, 128}  # at least one patch stays
    assert drop_leading_patches(context, 1.0, 32, gen).shape[1] < 128
    assert torch.equal(drop_leading_patches(context, 0.0, 32, gen), context)
    # window_tokens runs over the shortened context: fewer positions, a target for each.
    future = torch.arange(129.0, 161.0).repeat(3, 1)  # [3, 32]
    shorten = MaskingConfig(max_start_prob=0.0, shorten_prob=1.0)
    tokens, targets = window_tokens(context, future, 32, masking=shorten, generator=gen)
    full_tokens, full_targets = window_tokens(context, future, 32)
    assert full_tokens.shape[1] == 4 and tokens.shape[1] in (1, 2, 3)  # C/P positions
    assert targets.shape[:2] == tokens.shape[:2] and full_targets.shape[1] == 4


def test_truncation_settings_are_validated():
    from rexforge.errors import ConfigError
    from rexforge.train.settings import TrainConfig

    with pytest.raises(ConfigError, match="context-truncation-min-length must be >= 1"):
        TrainConfig(context_truncation_min_length=0).validate()
    with pytest.raises(ConfigError, match=r"context-outlier-prob must be in \[0, 1\]"):
        TrainConfig(context_outlier_prob=1.5).validate()


def test_outliers_shift_short_runs_of_observed_steps_by_several_stds():
    from rexforge.train.objective import inject_outliers

    torch.manual_seed(0)
    context = torch.randn(2000, 64) * 3.0 + 10.0  # std ~3
    context[:, :10] = float("nan")  # left padding of a shorter series
    gen = torch.Generator().manual_seed(0)
    out = inject_outliers(context, 0.5, gen)
    assert torch.isnan(out[:, :10]).all()  # missing steps stay missing
    changed = (out[:, 10:] != context[:, 10:]).sum(dim=1)  # steps moved per window
    hit = changed > 0
    assert 0.45 < hit.float().mean() < 0.55
    assert changed.max() <= 6  # at most two runs of at most three steps
    shift = (out - context)[:, 10:]
    std = context[:, 10:].std(dim=1, unbiased=False, keepdim=True)
    moved = (shift != 0).nonzero(as_tuple=True)
    sizes = (shift.abs() / std)[moved]
    # 2..8 stds; where two runs overlap their shifts add up (or, of opposite signs, cancel).
    assert (sizes > 1.99).float().mean() > 0.95 and sizes.max() < 16.01
    assert 0.6 < (shift[moved] < 0).float().mean() < 0.8  # mostly dips
    again = inject_outliers(context, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(torch.nan_to_num(again), torch.nan_to_num(out))  # seeded
    assert inject_outliers(context, 0.0, gen) is context


def test_outliers_reach_the_inputs_but_not_the_targets():
    from rexforge.train.loss import next_patch_targets
    from rexforge.train.objective import MaskingConfig, window_tokens

    torch.manual_seed(1)
    context, future = torch.randn(64, 64) + 5.0, torch.randn(64, 32) + 5.0
    masking = MaskingConfig(max_start_prob=0.0, outlier_prob=1.0)
    gen = torch.Generator().manual_seed(0)
    tokens, targets = window_tokens(context, future, 32, masking=masking, generator=gen)
    _, raw_targets = next_patch_targets(torch.cat((context, future), dim=1), 32)  # [B, 2, 32]

    def fit_residual(scaled: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """Per window: largest residual of the least-squares line scaled ~ raw."""
        x, y = raw.flatten(1).double(), scaled.flatten(1).double()
        xc, yc = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
        slope = (xc * yc).sum(1, keepdim=True) / (xc * xc).sum(1, keepdim=True)
        return (yc - slope * xc).abs().max(dim=1).values

    # Targets are the clean values under one affine scaling per window (the statistics of the
    # context the model read, outliers included): an exact line, no outlier in it.
    assert fit_residual(targets, raw_targets).max() < 1e-4
    # The inputs' values (first P of each token) hold the outliers: no exact line for any window.
    input_values = tokens[:, :, :32]  # [B, 2, 32]: patches 0 and 1 (the context)
    raw_context = torch.stack((context[:, :32], context[:, 32:]), dim=1)
    assert (fit_residual(input_values, raw_context) > 0.5).all()


def test_future_masking_feeds_what_the_exact_rollout_feeds():
    from rexforge.train.objective import MaskingConfig, mask_future, window_tokens

    # 10 patches: inputs 0..8 forecast patches 1..9; a 6-patch context, 4 future patches.
    tokens = torch.arange(1, 10.0)[None, :, None].expand(256, 9, 8).clone()
    targets = torch.arange(2, 11.0)[None, :, None].expand(256, 9, 4).clone()
    out, tgt = mask_future(tokens, targets, 6, 0.5, torch.Generator().manual_seed(0))
    masked = (out == 0).all(-1)  # [256, 9]
    chosen = masked[:, -1]
    assert 80 < int(chosen.sum()) < 176  # about half the windows
    assert torch.equal(out[~chosen], tokens[~chosen]) and torch.equal(
        tgt[~chosen], targets[~chosen]
    )
    shifts = set()
    for row, t in zip(out[chosen], tgt[chosen]):
        s = int(row[0, 0].item()) - 1  # leading patches dropped
        shifts.add(s)
        # Context patches s+1 .. 6 first, then masked future inputs, as the rollout's window.
        assert torch.equal(row[: 6 - s, 0], torch.arange(s + 1, 7.0))
        assert (row[6 - s :] == 0).all()
        # Targets moved with the tokens; the freed end positions have none.
        assert torch.equal(t[: 9 - s, 0], torch.arange(s + 2, 11.0))
        assert torch.isnan(t[9 - s :]).all()
    assert shifts == {0, 1, 2, 3}  # U{0..F-1}, F = 4 future patches
    # Through window_tokens, every window chosen: patch j + 1 of the future is forecast from
    # j masked inputs at some position, as TiRex's rollout appends masked patches.
    context, future = torch.randn(64, 64), torch.randn(64, 96)
    masking = MaskingConfig(max_start_prob=0.0, future_prob=1.0)
    tokens, targets = window_tokens(
        context, future, 32, masking=masking, generator=torch.Generator().manual_seed(0)
    )
    assert tokens.shape == (64, 4, 64) and targets.shape == (64, 4, 32)
    assert (tokens[:, 2:] == 0).all()  # with 2 context patches, positions 2, 3 are masked
    same = mask_future(tokens, targets, 2, 0.0, None)
    assert same[0] is tokens and same[1] is targets  # prob 0: nothing changes


def test_future_mask_prob_is_validated():
    from rexforge.errors import ConfigError
    from rexforge.train.settings import TrainConfig

    with pytest.raises(ConfigError, match=r"future-mask-prob must be in \[0, 1\]"):
        TrainConfig(future_mask_prob=-0.1).validate()
    with pytest.raises(ConfigError, match="--validation-windows must be an integer >= 1"):
        TrainConfig(validation_windows=0).validate()


def test_masking_config_from_settings_takes_every_augmentation_option():
    from rexforge.train.objective import MaskingConfig
    from rexforge.train.settings import TrainConfig

    settings = TrainConfig(
        mask_max_start_prob=0.2,
        mask_max_run=3,
        future_mask_prob=0.7,
        context_truncation_prob=0.4,
        context_truncation_min_length=16,
        context_truncation_log_uniform=True,
        context_outlier_prob=0.1,
    )
    assert MaskingConfig.from_settings(settings) == MaskingConfig(
        max_start_prob=0.2,
        max_run=3,
        truncate_prob=0.4,
        truncate_min_length=16,
        truncate_log_uniform=True,
        outlier_prob=0.1,
        future_prob=0.7,
    )
    # The defaults written once, in settings: the same patch masking as a default run.
    defaults = MaskingConfig.from_settings(TrainConfig())
    assert (defaults.max_start_prob, defaults.max_run) == (
        MaskingConfig().max_start_prob,
        MaskingConfig().max_run,
    )
