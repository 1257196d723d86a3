"""Models named by a Hugging Face hub id (``"NX-AI/TiRex"``), fetched into or read from the hub
cache with ``huggingface_hub``.

A string ``owner/name`` that is not an existing local path is a hub id. The repository's
``model.ckpt`` (what NXAI's TiRex repository holds) is downloaded once and then read from the
cache, also offline (``HF_HUB_OFFLINE=1``); a repository without one may hold a rexforge folder
(``config.json`` + ``model.safetensors``). Any failure ends in one ``InputError`` naming the id.
"""

from __future__ import annotations

import re
from pathlib import Path

from rexforge.errors import InputError

DEFAULT_HUB_MODEL = "NX-AI/TiRex"
OFFICIAL_FILENAME = "model.ckpt"
FOLDER_FILENAMES = ("config.json", "model.safetensors")

# The hub's own rule for names: letters, digits, '-', '_', '.'; neither part starts with '.'.
_HUB_ID = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*/[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")


def is_hub_id(source: str | Path) -> bool:
    """Whether ``source`` names a hub repository: ``owner/name`` and no such local path."""
    text = str(source)
    return bool(_HUB_ID.match(text)) and not Path(text).exists()


def resolve_model_source(source: str | Path) -> Path:
    """``source`` as a local path: ``"starter"`` is the bundled model, hub ids are resolved
    through the hub cache, anything else is returned as it is."""
    from rexforge.assets import resolve_starter

    source = resolve_starter(source)
    return hub_model_path(str(source)) if is_hub_id(source) else Path(source)


def hub_model_path(repo_id: str) -> Path:
    """The local path of the model of hub repository ``repo_id``: its cached ``model.ckpt``,
    or the cached folder of its rexforge files. Downloads what is not cached, unless offline."""
    hub, errors = _import_hub()
    try:
        return Path(hub.hf_hub_download(repo_id=repo_id, filename=OFFICIAL_FILENAME))
    except errors.LocalEntryNotFoundError as exc:  # not cached, and offline or no network
        cached = _cached_folder(hub, repo_id)
        if cached is not None:
            return cached
        offline = _offline(hub)
        raise InputError(
            _not_cached_message(repo_id) if offline else _unreachable_message(repo_id, exc)
        ) from None
    except errors.EntryNotFoundError:  # the repository exists but holds no model.ckpt
        return _hub_folder(hub, errors, repo_id)
    except (errors.RepositoryNotFoundError, errors.HFValidationError):
        raise InputError(
            f"model {repo_id!r} is neither a local path nor a Hugging Face hub repository "
            "you can access"
        ) from None
    except (OSError, ValueError) as exc:  # network failures, revision errors
        raise InputError(_unreachable_message(repo_id, exc)) from None


def _cached_folder(hub, repo_id: str) -> Path | None:
    """The cached snapshot folder of ``repo_id``'s rexforge files, if both are cached."""
    paths = [hub.try_to_load_from_cache(repo_id, name) for name in FOLDER_FILENAMES]
    if all(isinstance(p, str) for p in paths):
        return Path(paths[0]).parent
    return None


def _hub_folder(hub, errors, repo_id: str) -> Path:
    """A hub repository without ``model.ckpt``: its rexforge folder files, if it has them."""
    try:
        paths = [Path(hub.hf_hub_download(repo_id=repo_id, filename=f)) for f in FOLDER_FILENAMES]
    except errors.EntryNotFoundError:
        raise InputError(
            f"hub repository {repo_id!r} holds no {OFFICIAL_FILENAME} and no rexforge model "
            f"({' + '.join(FOLDER_FILENAMES)})"
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(_unreachable_message(repo_id, exc)) from None
    return paths[0].parent


def _import_hub():
    try:
        import huggingface_hub
        from huggingface_hub import errors
    except ModuleNotFoundError:
        raise InputError(
            "loading models by hub id needs huggingface_hub: pip install 'rexforge[hub]'"
        ) from None
    return huggingface_hub, errors


def _offline(hub) -> bool:
    check = getattr(hub.constants, "is_offline_mode", None)  # newer huggingface_hub versions
    return bool(check() if check is not None else hub.constants.HF_HUB_OFFLINE)


def _not_cached_message(repo_id: str) -> str:
    return (
        f"model {repo_id!r} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: "
        "download it once online (or unset HF_HUB_OFFLINE)"
    )


def _unreachable_message(repo_id: str, exc: BaseException) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"could not fetch model {repo_id!r} from the Hugging Face hub: {reason}"
