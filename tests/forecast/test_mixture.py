import torch

from rexforge.forecast.mixture import mixture_quantiles

LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def test_the_mixture_of_identical_forecasts_is_that_forecast():
    quantiles = torch.sort(torch.randn(2, 9, 5), dim=1).values  # [B, Q, P]
    for paths in (1, 4, 9):
        same = quantiles[:, None].expand(2, paths, 9, 5)
        torch.testing.assert_close(mixture_quantiles(same, LEVELS), quantiles)


def test_the_mixture_of_point_forecasts_has_their_empirical_quantiles():
    # 9 paths, each certain of one value 0..8: the mixture puts 1/9 on each, so its level-k/10
    # quantile is the smallest value whose share reaches k/10: k - 1.
    points = torch.arange(9.0).view(1, 9, 1, 1).expand(1, 9, 9, 1)
    torch.testing.assert_close(mixture_quantiles(points, LEVELS).flatten(), torch.arange(9.0))


def test_the_mixture_of_two_spread_forecasts_inverts_their_average_cdf():
    # Paths with deciles 0..8 and 10..18, each CDF linear from 0.1 to 0.9 between them. Below
    # 8 the mixture's CDF is (0.1 + 0.1x) / 2, so level t sits at 20t - 1; it reaches 0.5 at 8
    # (the first path's top 0.1 sits there), and above 10 it is 0.5 + (0.1 + 0.1(x - 10)) / 2.
    spread = torch.stack([torch.arange(9.0), torch.arange(10.0, 19.0)]).view(1, 2, 9, 1)
    got = mixture_quantiles(spread, LEVELS).flatten()
    want = torch.tensor([1.0, 3.0, 5.0, 7.0, 8.0, 11.0, 13.0, 15.0, 17.0])
    torch.testing.assert_close(got, want)
