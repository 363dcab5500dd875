"""Every ``adsim …`` command shown in README.md and docs/*.md code blocks works as written.

* default run: every documented command names a real command, real options and the right number
  of arguments (checked against the click definitions, no ``--help``); the cheap ones run as
  written in a copy of the repository's scenarios and configs, and their shown output matches;
* ``slow``: every documented command runs exactly as written (no ``--quiet`` added), in order,
  in a temporary copy — training, serving (until it answers), export, RL training with its
  progress bar.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

from adsim.cli import cli, main

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@dataclass
class DocCommand:
    """One ``adsim`` command line in a code block, with the output shown under it (``$`` blocks)."""

    file: str
    line: int
    text: str
    argv: list[str]
    redirect: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    shown: list[str] = field(default_factory=list)

    @property
    def expected_exit(self) -> int:
        """A shown output starting with ``error:`` documents a refusal (exit 2)."""
        return 2 if self.shown and self.shown[0].startswith("error:") else 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def _strip_comment(line: str) -> str:
    return re.split(r"\s{2,}#|\s#\s", line, maxsplit=1)[0].strip()


def documented_commands() -> list[DocCommand]:
    """Every line of a fenced code block that starts with ``adsim `` (or ``$ adsim ``)."""
    found: list[DocCommand] = []
    for path in DOC_FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        in_block = False
        current: DocCommand | None = None
        i = 0
        while i < len(lines):
            raw = lines[i]
            if raw.lstrip().startswith("```"):
                in_block = not in_block
                current = None
                i += 1
                continue
            if not in_block:
                i += 1
                continue
            stripped = raw.strip()
            prompt = stripped.startswith("$ ")
            body = stripped[2:] if prompt else stripped
            env_prefix = re.match(r"^((?:[A-Z_][A-Z0-9_]*=\S*\s+)*)adsim\s", body)
            if env_prefix:
                start = i
                env = dict(a.split("=", 1) for a in env_prefix.group(1).split())
                body = body[env_prefix.end(1):]
                text = _strip_comment(body)
                while text.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text[:-1].rstrip() + " " + _strip_comment(lines[i].strip())
                tokens = shlex.split(text)
                redirect = None
                if ">" in tokens:
                    k = tokens.index(">")
                    redirect, tokens = tokens[k + 1], tokens[:k]
                current = DocCommand(
                    str(path.relative_to(REPO)), start + 1, text, tokens[1:], redirect, env
                )
                found.append(current)
                if not prompt:
                    current = None
            elif prompt:
                current = None
            elif current is not None and stripped:
                current.shown.append(stripped)
            i += 1
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands() -> None:
    names = {c.argv[0] for c in COMMANDS}
    assert {"run", "validate", "train", "serve", "ope", "train-rl"} <= names, names


def _check_parses(cmd: DocCommand) -> None:
    ctx = click.Context(cli)
    command = cli.get_command(ctx, cmd.argv[0])
    assert command is not None, f"{cmd}: no command {cmd.argv[0]!r}"
    options: dict[str, click.Option] = {}
    arguments = []
    for p in command.params:
        if isinstance(p, click.Option):
            for o in [*p.opts, *p.secondary_opts]:
                options[o] = p
        else:
            arguments.append(p)
    positional: list[str] = []
    args = cmd.argv[1:]
    k = 0
    while k < len(args):
        tok = args[k]
        if tok.startswith("-") and tok != "-":
            name = tok.split("=", 1)[0]
            assert name in options, f"{cmd}: {command.name} has no option {name}"
            opt = options[name]
            if not opt.is_flag and not opt.count and "=" not in tok:
                assert k + 1 < len(args), f"{cmd}: {name} needs a value"
                k += 1
                if isinstance(opt.type, (click.types.IntParamType, click.types.FloatParamType,
                                         click.Choice)):
                    opt.type.convert(args[k], opt, None)  # raises on a bad documented value
        else:
            positional.append(tok)
        k += 1
    needed = sum(1 for a in arguments if a.required)
    most = sum(a.nargs if a.nargs > 0 else 10**6 for a in arguments)
    assert needed <= len(positional) <= most, (
        f"{cmd}: {command.name} takes {needed}..{most} argument(s), got {positional}"
    )


@pytest.mark.parametrize("cmd", COMMANDS, ids=str)
def test_documented_command_parses(cmd: DocCommand) -> None:
    _check_parses(cmd)


@pytest.fixture
def repo_copy(tmp_path: Path, monkeypatch) -> Path:
    """The scenarios and configs in a temporary working directory (commands write runs/ there)."""
    for name in ("scenarios", "configs"):
        shutil.copytree(REPO / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADSIM_CACHE_DIR", str(tmp_path / ".cache"))
    _example_files(tmp_path)
    return tmp_path


def _example_files(cwd: Path) -> None:
    """Files the docs show by name: README's bad.yaml, docs/reliability.md's big.yaml."""
    (cwd / "bad.yaml").write_text("world:\n  n_ads: 0\nname: bad\ncandidates: [{type: uniform}]\n")
    (cwd / "big.yaml").write_text(
        "name: big\nworld: {n_users: 10000000, n_ads: 100000}\ncandidates: [{type: uniform}]\n"
        "evaluation: {n_rounds: 100000000}\n"
    )


def _same_text(shown: list[str], printed: str) -> bool:
    """The shown lines (possibly wrapped) appear in the printed output, whitespace aside."""
    return " ".join(" ".join(shown).split()) in " ".join(printed.split())


def _run_in_process(cmd: DocCommand, monkeypatch) -> tuple[int, str, str]:
    for k, v in cmd.env.items():
        monkeypatch.setenv(k, v)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(cmd.argv))
    if cmd.redirect:
        Path(cmd.redirect).write_text(out.getvalue())
    return rc, out.getvalue(), err.getvalue()


CHEAP = {"validate", "schema"}


def test_cheap_documented_commands_run_as_written(repo_copy: Path, monkeypatch) -> None:
    ran = 0
    for cmd in COMMANDS:
        if cmd.argv[0] in CHEAP:
            rc, out, err = _run_in_process(cmd, monkeypatch)
            assert rc == cmd.expected_exit, f"{cmd}: {err}"
            assert _same_text(cmd.shown, out + err), f"{cmd}: shown {cmd.shown}, printed {out + err!r}"
            ran += 1
    assert ran >= 2
    json.loads((repo_copy / "scenario.schema.json").read_text())


def test_documented_error_example_prints_what_the_readme_shows(repo_copy: Path, monkeypatch) -> None:
    """README shows ``adsim run bad.yaml`` failing on world.n_ads at line 2."""
    [cmd] = [c for c in COMMANDS if c.argv == ["run", "bad.yaml"]]
    rc, _, err = _run_in_process(cmd, monkeypatch)
    assert rc == cmd.expected_exit == 2
    assert _same_text(cmd.shown, err), f"{cmd}: shown {cmd.shown}, printed {err!r}"
    assert not (repo_copy / "runs").exists()


# ------------------------------------------------------------------------- slow: all, as written
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# generic usage lines name placeholders; the slow test gives them real values
PLACEHOLDERS = {"CONFIG": "configs/ctr_synthetic.yaml"}


def _prepare_inputs(cwd: Path) -> None:
    """Inputs the docs assume the reader has: rows to score, a log and a target for `adsim ope`,
    a run folder ``runs/x`` (the documented resume/calibrate lines)."""
    import numpy as np
    import pandas as pd

    run = cwd / "runs" / "ctr_synthetic"
    if run.is_dir() and not (cwd / "rows.parquet").exists():  # raw rows of the same source
        from adsim.models.config import load_run_config
        from adsim.models.readers import generate_synthetic

        source = load_run_config(cwd / "configs" / "ctr_synthetic.yaml").data.source
        rows, _ = generate_synthetic(source.model_copy(update={"n_rows": 200, "seed": 12345}))
        rows.to_parquet(cwd / "rows.parquet")
    if run.is_dir() and not (cwd / "runs" / "x").exists():
        shutil.copytree(run, cwd / "runs" / "x")
    log = cwd / "runs" / "quickstart" / "log.parquet"
    if log.is_file() and not (cwd / "log.parquet").exists():
        shutil.copy(log, cwd / "log.parquet")
        n = len(pd.read_parquet(log, columns=["action"]))
        k = 10  # quickstart's n_ads
        pd.DataFrame(np.full((n, k), 1.0 / k), columns=[f"pi_{a}" for a in range(k)]).to_csv(
            cwd / "target.csv", index=False
        )


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_every_documented_command_runs_exactly_as_written(tmp_path: Path) -> None:
    # the configs read ../shared/data (beside the repository, as on CI); a checkout elsewhere
    # can point at it with ADSIM_SHARED_DIR
    shared = Path(os.environ.get("ADSIM_SHARED_DIR") or REPO / ".." / "shared").resolve()
    if not (shared / "data").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real data samples not found at {shared / 'data'} on CI (shared/ is beside the clone)")
        pytest.skip(f"real data samples not found at {shared / 'data'} (configs read ../shared/data)")
    (tmp_path / "shared").symlink_to(shared)  # the configs' ../shared/data, beside the copy
    tmp_path = tmp_path / "repo"
    tmp_path.mkdir()
    for name in ("scenarios", "configs"):
        shutil.copytree(REPO / name, tmp_path / name)
    _example_files(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "ADSIM_CACHE_DIR": str(tmp_path / ".cache")}
    failures = []
    for cmd in COMMANDS:
        _prepare_inputs(tmp_path)
        args = [PLACEHOLDERS.get(a, a) for a in cmd.argv]
        argv = [sys.executable, "-c", "import sys; from adsim.cli import main; sys.exit(main())", *args]
        if cmd.argv[0] == "serve":  # a server: it must come up and answer, then stop
            port = _free_port()
            proc = subprocess.Popen([*argv, "--port", str(port)], cwd=tmp_path, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                ok = False
                for _ in range(240):
                    if proc.poll() is not None:
                        break
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=1):
                            ok = True
                            break
                    except OSError:
                        time.sleep(0.5)
            finally:
                proc.terminate()
                out = proc.communicate(timeout=60)[0]
            if not ok:
                failures.append(f"{cmd}: server did not come up\n{out[-2000:]}")
            continue
        proc = subprocess.run(argv, cwd=tmp_path, env={**env, **cmd.env}, capture_output=True,
                              text=True, timeout=3600)
        if cmd.redirect:
            (tmp_path / cmd.redirect).write_text(proc.stdout)
        text = proc.stdout + proc.stderr
        if proc.returncode != cmd.expected_exit or "Traceback" in text:
            failures.append(f"{cmd}: exit {proc.returncode}\n{text[-3000:]}")
    assert not failures, "\n\n".join(failures)
