"""The README and docs/ cannot rot: every command they show runs, every relative link resolves.

Every line of a ```bash block in README.md and docs/*.md is a command (a trailing `\\` joins the
next line; a line starting with `#` and a trailing comment after two spaces are comments). Each
page's commands run in order in one fresh folder that holds the repository's top-level entries, so
a later command can use what an earlier one wrote. How a command runs:

- listed in :data:`SLOW` (a study, an install, a cluster): not run here; it names what covers it
  instead (a test ``path::name`` or a CI script), and that must exist;
- ``xfer ...`` and ``python -m sweeps.grid ...``: called in this process (the imports are paid
  once, which keeps the whole file well under a minute on 2 cores);
- ``python bench/X.py ...``: benchmarks take minutes by design, so only ``--help`` is run (the
  script imports and parses its options);
- ``export NAME=VALUE ...``: sets the variables for the page's later commands;
- anything else: ``bash -c`` in that folder, the virtual environment's ``bin`` first on PATH.

Each must exit 0. A ```text block right after a ```bash block is the output of that block's
last command: each of its lines must appear in what the command printed. Links: every
``[text](target)`` that is not a URL must name a file or folder inside the repository, and a
``#fragment`` a heading of that page.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sweeps import grid
from xfer import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 120

# Commands too slow to run here (a study, an install, a cluster, a server) -> what covers them.
CLUSTER_TEST = "tests/test_cluster_config.py::test_cluster_yaml_passes_ray_schema"
SLOW = {
    'pip install torch==2.13.0 && pip install -e ".[dev]" && python -m sweeps.grid': ".ci/run",
    'python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && '
    'pip install -e ".[dev]"': ".ci/run",
    "python -m pytest -q": ".ci/run",
    "python -m pytest -q tests/test_transfer.py": "tests/test_transfer.py",
    "python -m sweeps.grid": "tests/test_sweep_run.py::test_tiny_study_end_to_end_then_resume",
    "xfer train --data data/bundled --lang de --budget 12K --model tiny --seq-len 128 "
    "--batch-size 8 --max-steps 20 --out runs/de-12K":
        "tests/test_train.py::test_cli_trains_and_reports_bad_input",
    "tensorboard --logdir runs/default-*/tensorboard":
        "tests/test_export.py::test_tensorboard_has_every_trials_curves",
    "xfer export runs/default-* --trial pretrain-lex25-300K-s0 --out my-model":
        "tests/test_export.py::test_export_reproduces_the_trials_test_perplexity",
    'xfer generate my-model --prompt "The " --bytes 200 --temperature 0.8 --seed 1':
        "tests/test_export.py::test_generate_is_seeded_and_repeatable",
    'python3 -m venv .venv-xla && . .venv-xla/bin/activate && pip install -e ".[tpu]"': ".ci/xla",
    "ray up cluster.yaml": CLUSTER_TEST,
    "ray job submit --address http://127.0.0.1:8265 -- /opt/xfer-env/bin/python -m sweeps.grid "
    "--config paper --address auto --output /mnt/xfer/runs":
        "tests/test_sweep_cluster.py::test_two_node_cluster_runs_a_study_on_both_nodes",
    "ray down cluster.yaml": CLUSTER_TEST,
    "sudo install -d -o $USER /opt/xfer-env && python3 -m venv /opt/xfer-env && "
    "/opt/xfer-env/bin/pip install torch==2.13.0 && /opt/xfer-env/bin/pip install -e .":
        "tests/test_cluster_config.py::test_ray_and_jobs_run_on_one_named_python_environment",
    "ray get-auth-token --generate": ".ci/ray-up",
    "ray up cluster-local.yaml": ".ci/ray-up",
    "RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- "
    "/opt/xfer-env/bin/python -m sweeps.grid --config default --address auto "
    "--output /srv/xfer/runs": ".ci/ray-up",
    "ray down cluster-local.yaml": ".ci/ray-up",
    "ray job list --address http://127.0.0.1:8265":
        "tests/test_security.py::test_dashboard_of_a_local_run_opens_with_its_token",
}

FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
OUTSIDE = re.compile(r"\.\./shared\b|DESIGN\.md")  # the lab's notes beside the checkout
SHELL = re.compile(r"&&|\|\||[|;<>$`]")


def steps(text: str) -> list[tuple[str, list[str]]]:
    """Every command of the page's ```bash blocks (continuation lines joined), each with the
    output lines it must print: a ```text block right after its block, for the block's last."""
    out: list[tuple[str, list[str]]] = []
    previous = None
    for fence in FENCE.finditer(text):
        lang, body = fence.groups()
        follows = previous is not None and not text[previous.end():fence.start()].strip()
        if lang == "text" and follows and previous.group(1) == "bash" and out:
            out[-1] = (out[-1][0], [line for line in body.splitlines() if line.strip()])
        previous = fence
        if lang != "bash":
            continue
        pending = ""
        for raw in body.splitlines():
            part = raw.strip()
            if part.endswith("\\"):
                pending += part[:-1].rstrip() + " "
                continue
            line = re.sub(r"\s{2,}#.*$", "", pending + part).strip()
            pending = ""
            if line and not line.startswith("#"):
                out.append((line, []))
    return out


def commands(text: str) -> list[str]:
    """The commands of every ```bash block of a page."""
    return [command for command, _ in steps(text)]


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    return {slug(m) for m in re.findall(r"^#{1,6}\s+(.+)$", text, flags=re.M)}


def covered(target: str) -> bool:
    """A coverer exists: ``path::test_name`` (the file defines that test) or a path."""
    path, _, name = target.partition("::")
    file = ROOT / path
    return file.is_file() and (not name or re.search(rf"^def {re.escape(name)}\(",
                                                     file.read_text(), re.M) is not None)


def in_process(argv: list[str]) -> tuple[int, str] | None:
    """Run ``xfer``, ``python -m sweeps.grid`` or a bench script's ``--help`` here; None when
    the command is none of these."""
    if argv[0] == "xfer":
        call = lambda: cli.main(argv[1:])  # noqa: E731
    elif argv[:3] == ["python", "-m", "sweeps.grid"]:
        call = lambda: grid.main(argv[3:])  # noqa: E731
    elif argv[0] == "python" and len(argv) > 1 and argv[1].startswith("bench/"):
        def call() -> int:
            old = sys.argv
            sys.argv = [argv[1], "--help"]
            try:
                runpy.run_path(argv[1], run_name="__main__")
            finally:
                sys.argv = old
            return 0
    else:
        return None
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = call()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return int(code or 0), out.getvalue()


def workdir(tmp_path: Path) -> Path:
    """A fresh folder holding the repository's top-level entries (as links)."""
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".venv", "runs") and not entry.name.startswith(".venv"):
            (tmp_path / entry.name).symlink_to(entry)
    return tmp_path


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_a_page_shows_runs(page: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir(tmp_path))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for command, expected in steps(page.read_text()):
        if command in SLOW:
            assert covered(SLOW[command]), f"{command!r}: its coverer {SLOW[command]} is missing"
            continue
        if command.startswith("export ") and not SHELL.search(command):
            for pair in shlex.split(command)[1:]:
                monkeypatch.setenv(*pair.split("=", 1))
            continue
        ran = None if SHELL.search(command) else in_process(shlex.split(command))
        if ran is None:
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                                  timeout=120, cwd=tmp_path, env=os.environ.copy())
            ran = done.returncode, done.stdout + done.stderr
        code, output = ran
        assert code == 0, f"{page.name}: `{command}` exited {code}:\n{output[-2000:]}"
        unseen = [line for line in expected if line not in output]
        assert unseen == [], f"{page.name}: `{command}` printed:\n{output[-2000:]}"


def test_slow_commands_are_shown_and_covered() -> None:
    shown = {c for page in PAGES for c in commands(page.read_text())}
    assert set(SLOW) <= shown, f"SLOW lists commands no page shows: {set(SLOW) - shown}"
    assert all(covered(target) for target in SLOW.values())


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """The relative links of ``page`` that leave ``root`` (the repository), name nothing, or name
    a heading the target page lacks."""
    prose = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    bad = []
    for target in LINK.findall(prose):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.is_relative_to(root):
            bad.append(f"{target}: outside the repository")
        elif not dest.exists():
            bad.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            bad.append(f"{target}: no such heading")
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page: Path) -> None:
    assert OUTSIDE.search(page.read_text()) is None, "names a folder outside the repository"
    assert broken_links(page) == []


def test_the_index_links_every_page() -> None:
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / target.partition("#")[0]).resolve()
              for target in LINK.findall(index.read_text())}
    assert [p.name for p in PAGES[1:] if p != index and p.resolve() not in linked] == []


def test_readme_is_short() -> None:
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_readme_opens_with_the_two_commands() -> None:
    first = FENCE.search((ROOT / "README.md").read_text())
    assert first is not None and commands(first.group(0)) == [
        'pip install torch==2.13.0 && pip install -e ".[dev]" && python -m sweeps.grid',
        "python -m pytest -q"]


def test_cli_page_names_every_option() -> None:
    """docs/cli.md names every option of ``python -m sweeps.grid`` and of every ``xfer``
    command but ``xfer train``, whose options are the training config's fields."""
    page = (ROOT / "docs/cli.md").read_text()
    helps = [["python", "-m", "sweeps.grid", "--help"]] + [
        ["xfer", name, "--help"] for name in ("prepare", "analyse", "premium", "lid", "distance",
                                             "export", "generate")]
    missing = {" ".join(argv[:-1]): sorted(set(re.findall(r"--[a-z0-9-]+", in_process(argv)[1]))
                                          - {"--help"} - set(re.findall(r"--[a-z0-9-]+", page)))
               for argv in helps}
    assert {k: v for k, v in missing.items() if v} == {}


def test_method_page_names_the_reports_default_interpolation() -> None:
    from sweeps.config import Analysis

    said = re.search(r"The report's default is `(\w+)`", (ROOT / "docs/method.md").read_text())
    assert said is not None and said.group(1) == Analysis().interp


def test_the_checks_can_fail(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n```bash\nxfer distance en de  # six distances\n"
                    "python -m sweeps.grid \\\n  --dry-run\n```\n")
    assert commands(page.read_text()) == ["xfer distance en de", "python -m sweeps.grid --dry-run"]
    assert steps("```bash\nxfer premium ru\n```\n```text\nru  en  1.992\n```\n") == [
        ("xfer premium ru", ["ru  en  1.992"])]
    assert in_process(["xfer", "distance", "en", "xx"])[0] != 0
    assert slug("Verdicts: recovered, `twin`'s") == "verdicts-recovered-twins"
    assert anchors(page) == {"a-page"}
    assert not covered("tests/test_docs.py::test_no_such_test")
    page.write_text("# A page\n[up](../../etc/passwd) [gone](nothing.md) [here](#a-page) "
                    "[x](#nowhere) [web](https://example.org)")
    assert [b.split(":")[1] for b in broken_links(page, tmp_path)] == [
        " outside the repository", " no such file", " no such heading"]
