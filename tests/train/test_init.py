"""The package's public names: ``from rexforge.train import fit, FitResult``."""

import subprocess
import sys


def test_fit_and_fit_result_import_from_the_package_in_a_fresh_interpreter():
    # A fresh interpreter: in the test session the loop module may already be imported.
    code = (
        "from rexforge.train import fit, FitResult\n"
        "import rexforge.train.loop as loop\n"
        "from rexforge.train import fit as again\n"
        "assert fit is loop.fit is again and callable(fit), fit\n"
        "assert FitResult is loop.FitResult\n"
        "import rexforge.train as t\n"
        "assert t.fit is loop.fit\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_an_unknown_name_is_an_attribute_error():
    import pytest

    import rexforge.train

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rexforge.train.nope  # noqa: B018
