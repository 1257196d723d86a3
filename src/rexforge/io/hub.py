"""Models named by a Hugging Face hub id (``"NX-AI/TiRex"``, ``"NX-AI/TiRex-2"``), fetched into
or read from the hub cache with ``huggingface_hub``.

A string ``owner/name`` that is not an existing local path is a hub id. The repository's
``config.json`` + ``model.safetensors`` (what NXAI's TiRex-2 repository holds, or a rexforge
folder), else its ``model.ckpt`` (what NXAI's TiRex repository holds), is downloaded once and
then read from the cache, also offline (``HF_HUB_OFFLINE=1``). Any failure ends in one
``InputError`` naming the id.
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
    """The local path of the model of hub repository ``repo_id``: the cached folder of its
    ``config.json`` + ``model.safetensors`` (a TiRex-2 release or a rexforge folder), else its
    cached ``model.ckpt`` (a TiRex release). Downloads what is not cached, unless offline.

    The folder files are asked for first because a repository that has them may also keep a
    legacy ``model.ckpt`` for older clients (tirex-2 prefers the safetensors files the same
    way); a TiRex repository without them costs one small failed request online."""
    hub, errors = _import_hub()
    try:
        return _download_folder(hub, repo_id)
    except errors.EntryNotFoundError:
        # Not cached while offline (LocalEntryNotFoundError), or the repository has no folder
        # files: its model.ckpt decides.
        pass
    except (errors.RepositoryNotFoundError, errors.HFValidationError):
        raise InputError(_inaccessible_message(repo_id)) from None
    except (OSError, ValueError) as exc:  # network failures, revision errors
        raise InputError(_unreachable_message(repo_id, exc)) from None
    return _download_official(hub, errors, repo_id)


def _download_folder(hub, repo_id: str) -> Path:
    """The snapshot folder holding ``repo_id``'s ``FOLDER_FILENAMES`` (fetched if needed)."""
    paths = [Path(hub.hf_hub_download(repo_id=repo_id, filename=f)) for f in FOLDER_FILENAMES]
    return paths[0].parent


def _download_official(hub, errors, repo_id: str) -> Path:
    """``repo_id``'s ``model.ckpt`` (fetched if needed), or one ``InputError``."""
    try:
        return Path(hub.hf_hub_download(repo_id=repo_id, filename=OFFICIAL_FILENAME))
    except errors.LocalEntryNotFoundError as exc:  # not cached, and offline or no network
        offline = _offline(hub)
        raise InputError(
            _not_cached_message(repo_id) if offline else _unreachable_message(repo_id, exc)
        ) from None
    except errors.EntryNotFoundError:  # the repository exists but holds no model.ckpt
        raise InputError(
            f"hub repository {repo_id!r} holds no {OFFICIAL_FILENAME} and no "
            f"{' + '.join(FOLDER_FILENAMES)}"
        ) from None
    except (errors.RepositoryNotFoundError, errors.HFValidationError):
        raise InputError(_inaccessible_message(repo_id)) from None
    except (OSError, ValueError) as exc:  # network failures, revision errors
        raise InputError(_unreachable_message(repo_id, exc)) from None


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


def _inaccessible_message(repo_id: str) -> str:
    return (
        f"model {repo_id!r} is neither a local path nor a Hugging Face hub repository "
        "you can access"
    )


def _not_cached_message(repo_id: str) -> str:
    return (
        f"model {repo_id!r} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: "
        "download it once online (or unset HF_HUB_OFFLINE)"
    )


def _unreachable_message(repo_id: str, exc: BaseException) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"could not fetch model {repo_id!r} from the Hugging Face hub: {reason}"
