"""``rexforge export``: write a model in another format, or several checkpoints' average.

Formats: ``onnx`` (NXAI's ``tirex.onnx`` interface), ``folder`` (config.json +
model.safetensors, plus for TiRex the official-layout model.ckpt inside it: what a finished run
writes; a TiRex-2 model's folder is its official layout) and ``official`` (one official-layout
``model.ckpt`` that tirex-ts loads; TiRex only). Without ``--format``
the output's name decides: ``*.onnx`` -> onnx, ``*.ckpt`` -> official, no suffix -> a folder.

Several models (for example a run's ``checkpoints/step-*.ckpt``) are averaged uniformly into
one (a "soup"; the same architecture is required); the metadata says which were averaged and
why (``--selected-by``).
"""

from __future__ import annotations

from pathlib import Path

from rexforge.errors import CheckpointError, InputError

FORMATS = ("onnx", "folder", "official")


def export(
    model: list[str],
    *,
    output: Path,
    format: str | None = None,
    selected_by: str | None = None,
    optimize: bool = False,
) -> int:
    """Write a model (or the average of several checkpoints) as a folder, an official .ckpt
    or ONNX.

    Args:
        model: checkpoint file or folder, a training .ckpt, hub id, or 'starter'; several
            (folder/official formats) are averaged
        output: file or folder to write
        format: output format: onnx, folder, official (default: from --output: .onnx, .ckpt,
            else a folder)
        selected_by: why these checkpoints, recorded in the metadata (folder/official formats)
        optimize: onnx: run the exporter's graph optimiser: a smaller file, 3x the export time
            (impractical for tirex-35m on a small CPU)
    """
    fmt = output_format(output, format)
    if fmt == "onnx":
        return _export_onnx(model, output, optimize)
    from rexforge.io.checkpoint import write_export, write_official

    ckpt = combined_checkpoint(model, selected_by)
    path = write_export(output, ckpt) if fmt == "folder" else write_official(output, ckpt)
    what = f"the average of {len(model)} checkpoints" if len(model) > 1 else "the model"
    print(f"wrote {what} -> {output if fmt == 'folder' else path}")
    return 0


def output_format(output: Path, requested: str | None) -> str:
    if requested is not None:
        if requested not in FORMATS:
            raise InputError(f"unknown export format {requested!r}; known: {', '.join(FORMATS)}")
        return requested
    suffix = output.suffix.lower()
    if suffix not in ("", ".onnx", ".ckpt") and not output.is_dir():
        raise InputError(
            f"--output {output}: an output file must end in .onnx (ONNX) or .ckpt (official), "
            "or name a folder (no suffix, or --format folder)"
        )
    return "onnx" if suffix == ".onnx" else "official" if suffix == ".ckpt" else "folder"


def _export_onnx(models: list[str], output: Path, optimize: bool) -> int:
    from rexforge.io.onnx_export import check_output_path, export_onnx

    if len(models) != 1:
        raise InputError(f"the onnx format exports one model, got {len(models)}")
    check_output_path(output)
    path = export_onnx(models[0], output, optimize=optimize)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB): input 'context' [batch, length]")
    return 0


def combined_checkpoint(sources: list[str], selected_by: str | None):
    """One ``Checkpoint`` from ``sources``: the model itself, or the uniform average of several
    with the same architecture. Metadata: the run's own export (``<run>/final``) when the
    sources are a run's training checkpoints, else the first source's; plus the steps and
    which checkpoints were combined."""
    from rexforge.io.checkpoint import Checkpoint, read_checkpoint
    from rexforge.io.hub import resolve_model_source
    from rexforge.train.checkpointing import average_state_dicts

    paths = [resolve_model_source(s) for s in sources]
    models = [read_checkpoint(p) for p in paths]
    if any(m.config != models[0].config for m in models[1:]):
        raise CheckpointError("the checkpoints to average have different architectures")
    state = average_state_dicts([m.state_dict for m in models]) if len(models) > 1 else None
    metadata = _run_metadata(paths[0]) or dict(models[0].metadata)
    steps = [int(m.metadata.get("steps") or 0) for m in models]
    names = ", ".join(f"{p.name} (step {s})" for p, s in zip(paths, steps))
    if len(models) > 1 or selected_by:
        prefix = "average of " if len(models) > 1 else ""
        metadata["selected_checkpoint"] = f"{prefix}{names}; {selected_by or 'chosen by hand'}"
        metadata["steps"] = max(steps)
        metadata.pop("metrics", None)  # measured on the run's final weights, not these
    return Checkpoint(models[0].config, state or models[0].state_dict, metadata)


def _run_metadata(path: Path) -> dict | None:
    """The metadata of ``<run>/final`` for a path ``<run>/checkpoints/*.ckpt`` (None if the run
    has not exported yet, or the path is not in a run)."""
    from rexforge.io.checkpoint import read_checkpoint

    final = path.parent.parent / "final"
    if path.parent.name != "checkpoints" or not (final / "config.json").is_file():
        return None
    return dict(read_checkpoint(final).metadata)
