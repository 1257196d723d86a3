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


def test_truncation_settings_are_validated():
    from rexforge.errors import ConfigError
    from rexforge.train.settings import TrainConfig

    with pytest.raises(ConfigError, match="context-truncation-min-length must be >= 1"):
        TrainConfig(context_truncation_min_length=0).validate()
