import math

import torch

from rexforge.train.loss import next_patch_targets, pinball_loss


def test_pinball_matches_hand_computation():
    # B=1, N=1, Q=2 (0.1, 0.9), P=2; targets y = [1, 3]
    pred = torch.tensor([[[[0.0, 4.0], [2.0, 2.0]]]])  # [1, 1, 2, 2]
    y = torch.tensor([[[1.0, 3.0]]])  # [1, 1, 2]
    # q=0.1: d=[1,-1] -> [0.1, 0.9]; q=0.9: d=[-1, 1] -> [0.1, 0.9]; mean of 4 = 0.5
    assert math.isclose(pinball_loss(pred, y, [0.1, 0.9]).item(), 0.5, rel_tol=1e-6)


def test_nan_targets_are_ignored():
    pred = torch.tensor([[[[0.0, 4.0], [2.0, 2.0]]]])
    y = torch.tensor([[[1.0, float("nan")]]])
    # only the first point counts: q=0.1 d=1 -> 0.1; q=0.9 d=-1 -> 0.1; mean 0.1
    loss = pinball_loss(pred.requires_grad_(), y, [0.1, 0.9])
    assert math.isclose(loss.item(), 0.1, rel_tol=1e-6)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[..., 1].abs().sum() == 0


def test_all_nan_targets_give_zero_with_graph():
    pred = torch.ones(2, 3, 4, 5, requires_grad=True)
    loss = pinball_loss(pred, torch.full((2, 3, 5), float("nan")), [0.1, 0.3, 0.5, 0.9])
    assert loss.item() == 0.0
    loss.backward()


def test_next_patch_targets_shift_by_one_patch():
    x = torch.arange(12.0).reshape(1, 12)
    inputs, targets = next_patch_targets(x, 4)
    assert inputs.shape == targets.shape == (1, 2, 4)
    assert torch.equal(inputs[0, 1], torch.tensor([4.0, 5, 6, 7]))
    assert torch.equal(targets[0, 0], torch.tensor([4.0, 5, 6, 7]))
    assert torch.equal(targets[0, 1], torch.tensor([8.0, 9, 10, 11]))


def test_values_far_outside_the_context_scale_do_not_dominate_the_loss():
    """A flat context (scale ~1e-5) followed by a jump: the jump is ignored, not 1e5-sized."""
    from rexforge.config import TiRexConfig
    from rexforge.model.tirex import TiRexModel
    from rexforge.train.objective import window_loss

    model = TiRexModel(TiRexConfig.from_name("tirex-test"), kernel="torch_ref", numerics="fp32")
    context = torch.zeros(2, 64)
    context[1] = torch.linspace(0, 1, 64)
    future = torch.full((2, 32), 5.0)
    loss = window_loss(model, context, future)
    assert torch.isfinite(loss) and loss < 10
