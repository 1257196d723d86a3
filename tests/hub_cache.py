"""A Hugging Face hub cache built on disk by the tests, holding random-weight checkpoints under
hub ids, so that hub loading is tested offline (no network)."""

from __future__ import annotations

import shutil
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def add_to_cache(cache: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """Lay out ``cache/models--owner--name/{refs/main, snapshots/<commit>/<file>}`` as
    huggingface_hub does; returns the snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for name, source in files.items():
        shutil.copyfile(source, snapshot / name)
    return snapshot


def use_offline_cache(monkeypatch, cache: Path) -> None:
    """Point huggingface_hub (already imported or not) at ``cache`` and switch it offline."""
    import huggingface_hub.constants as constants

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
