"""The training data mix from Python: ``DataMix`` -> ``build_training_series``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rexforge.data import DataMix, build_training_series
from rexforge.data.mix import SYNTHETIC_FAMILIES, register_synthetic
from rexforge.data.series import TimeSeries
from rexforge.errors import InputError


def test_a_mix_of_files_and_families_in_registry_order(tmp_path):
    frame = np.column_stack([np.sin(np.arange(150) / 4), np.cos(np.arange(150) / 7)])
    path = tmp_path / "wide.csv"
    np.savetxt(path, frame, delimiter=",", header="a,b", comments="")
    mix = DataMix(
        files=[path],
        columns="a,b",
        synthetic={"stable": 2, "kernelsynth": 1},  # dict order does not decide the order
        synthetic_length=40,
        tsmixup=1,
        seed=3,
    )
    series, description = build_training_series(mix)
    assert [s.item_id for s in series][:2] == ["a", "b"]
    assert [s.item_id for s in series][2:] == [
        "kernelsynth-0",
        "stable-0",
        "stable-1",
        "tsmixup-0",
    ]
    assert len(series[2]) == 40
    assert description.endswith(
        "KernelSynth (1 series of 40, seed 3); stable-season synthetic (2 series of 12-240, "
        "seed 3); TSMixup (1 mixtures of 2 real series, seed 3)"
    )
    again, _ = build_training_series(mix)
    for first, second in zip(series, again):
        np.testing.assert_array_equal(first.target, second.target)


def test_every_command_line_family_is_registered_with_its_option():
    options = {name: family.option for name, family in SYNTHETIC_FAMILIES.items()}
    assert options == {
        "kernelsynth": "synthetic",
        "seasonal": "seasonal_synth",
        "trend": "trend_synth",
        "cycle": "cycle_synth",
        "stable": "stable_synth",
        "covariate": "covariate_synth",
    }


@pytest.fixture
def ramp_family():
    """A family registered for one test only."""

    def ramps(seed, length):
        return (TimeSeries(f"ramp-{i}", np.arange(5.0) + seed) for i in itertools.count())

    register_synthetic("ramp", label="ramp", lengths="5", option="ramp_synth", help="ramps")(ramps)
    yield ramps
    del SYNTHETIC_FAMILIES["ramp"]


def test_a_registered_family_joins_the_mix_and_the_command_line(ramp_family):
    from rexforge.cli import parse_command

    series, description = build_training_series(DataMix(synthetic={"ramp": 2}, seed=1))
    assert [s.item_id for s in series] == ["ramp-0", "ramp-1"]
    assert description == "ramp (2 series of 5, seed 1)"
    with pytest.raises(ValueError, match="already registered"):
        register_synthetic("ramp", label="", lengths=None, option="x", help="")(ramp_family)
    options = parse_command(["pretrain", "--ramp-synth", "3", "--output-dir", "x"])[2]
    assert options["synthetic"]["ramp"] == 3


def test_bad_mixes_are_refused_before_any_file_is_read(tmp_path):
    missing = tmp_path / "missing.csv"
    with pytest.raises(InputError, match="unknown synthetic family 'gp'"):
        build_training_series(DataMix(files=[missing], synthetic={"gp": 1}))
    with pytest.raises(InputError, match="--trend-synth must be a number of series >= 0"):
        build_training_series(DataMix(files=[missing], synthetic={"trend": -1}))
    with pytest.raises(InputError, match="no training data"):
        build_training_series(DataMix())
    with pytest.raises(InputError, match="--tsmixup needs --data series of at least 128"):
        build_training_series(DataMix(synthetic={"cycle": 1}, tsmixup=1))
