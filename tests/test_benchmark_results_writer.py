"""benchmarks.results_writer: the one way benchmark scripts write their result files."""

import json

from benchmarks.results_writer import machine_tag, write_result


def test_writes_md_and_json_under_the_standard_header(tmp_path):
    markdown = "# A benchmark\n\nIts own text.\n"
    stem = write_result(
        "demo", markdown, {"rows": [1.5, float("nan")]}, folder=tmp_path, command="python x.py"
    )

    assert stem.parent == tmp_path
    assert stem.name.startswith(f"demo-{machine_tag()}-")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{stem.name}.json", f"{stem.name}.md"]

    text = (tmp_path / f"{stem.name}.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "# A benchmark"
    assert lines[2].startswith("Date: ")
    assert "Command: `python x.py`" in text
    for label in ("Machine: ", "CPU flags: ", "Versions: python "):
        assert label in text
    assert text.endswith("Its own text.\n")

    doc = json.loads((tmp_path / f"{stem.name}.json").read_text())
    assert doc["header"]["benchmark"] == "demo"
    assert doc["header"]["command"] == "python x.py"
    assert {"torch", "rexforge"} <= set(doc["header"]["versions"])
    assert doc["rows"] == [1.5, None]  # NaN is written as null


def test_markdown_without_a_title_gets_the_header_on_top(tmp_path):
    stem = write_result("plain", "just a table\n", {}, folder=tmp_path)
    text = (tmp_path / f"{stem.name}.md").read_text()
    assert text.startswith("Date: ")
    assert text.endswith("\njust a table\n")
