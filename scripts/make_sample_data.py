"""Generate the bundled sample data file (deterministic; no third-party data terms).

    python scripts/make_sample_data.py   # writes src/rexforge/assets/sample_data.csv

Six hourly/daily-like series with trend, daily and weekly seasonality, noise and one gap.
"""

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "src" / "rexforge" / "assets" / "sample_data.csv"


def main() -> None:
    rng = np.random.default_rng(2025)
    frames = []
    n = 24 * 28  # four weeks of hourly data
    idx = pd.date_range("2025-01-01", periods=n, freq="h")
    t = np.arange(n)
    for i in range(6):
        level = 50 + 20 * i
        daily = (5 + 2 * i) * np.sin(2 * np.pi * (t + 3 * i) / 24)
        weekly = 3 * np.sin(2 * np.pi * t / (24 * 7))
        trend = 0.01 * (i - 2) * t
        noise = rng.normal(0, 1 + 0.3 * i, n)
        y = level + daily + weekly + trend + noise
        if i == 2:
            y[300:310] = np.nan  # a gap: the model's mask handles it
        frames.append(
            pd.DataFrame({"item_id": f"sensor_{i}", "timestamp": idx, "target": np.round(y, 3)})
        )
    pd.concat(frames).to_csv(OUT, index=False)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
