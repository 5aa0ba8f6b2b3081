"""[[files]] the Dockerfile already copies to the same place get no second COPY (and the plan does not list them).

Fly injected a [[files]] entry's local file at deploy time; the rewrite makes that a COPY. When the Dockerfile's
final stage already puts the same build-context file at the same path (directly, through a directory copy such as
``COPY . /app``, or into a folder), a second COPY only repeats it. Anything flymigrate cannot resolve for sure
(another stage, variables, a .dockerignore that leaves the file out) keeps the COPY: a duplicate line is harmless,
a missing file is not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flymigrate.parse.dockerfile import parse_dockerfile_text
from flymigrate.rewrite import copies_to

from .helpers import EXAMPLE, REPO


def _copies(body: str, local: str = "start.sh", guest: str = "/app/start.sh", ignore: tuple[str, ...] = ()) -> bool:
    df = parse_dockerfile_text(body, "Dockerfile")
    return copies_to(df, local, guest, ignore=ignore) is not None


@pytest.mark.parametrize("body", [
    "FROM python:3.11\nCOPY start.sh /app/start.sh\n",
    "FROM python:3.11\nCOPY ./start.sh /app/start.sh\n",
    "FROM python:3.11\nCOPY . /app\n",
    "FROM python:3.11\nCOPY . /app/\n",
    "FROM python:3.11\nWORKDIR /app\nCOPY . .\n",
    "FROM python:3.11\nWORKDIR /app\nCOPY start.sh .\n",
    "FROM python:3.11\nWORKDIR /app\nCOPY start.sh ./start.sh\n",
    "FROM python:3.11\nWORKDIR /app\nCOPY start.sh /app\n",  # /app is a folder: the file goes into it
    "FROM python:3.11\nCOPY start.sh requirements.txt /app/\n",
    "FROM python:3.11\nCOPY --chown=1000:1000 --chmod=755 start.sh /app/start.sh\n",
    'FROM python:3.11\nCOPY ["start.sh", "/app/start.sh"]\n',
    "FROM python:3.11\nCOPY *.sh /app/\n",
    "FROM python:3.11\nADD start.sh /app/start.sh\n",
    "FROM python:3.11 AS build\nRUN true\nFROM python:3.11\nCOPY . /app\n",
], ids=lambda b: b.split("\n", 1)[1].replace("\n", " | ")[:60])
def test_resolved_as_already_copied(body: str) -> None:
    assert _copies(body)


def test_a_file_in_a_copied_folder() -> None:
    assert _copies("FROM python:3.11\nCOPY scripts /app/scripts\n", "scripts/start.sh", "/app/scripts/start.sh")
    assert _copies("FROM python:3.11\nCOPY scripts/ /opt/\n", "scripts/start.sh", "/opt/start.sh")


@pytest.mark.parametrize("body", [
    "FROM python:3.11\nRUN echo\n",
    "FROM python:3.11\nCOPY start.sh /srv/start.sh\n",  # elsewhere
    "FROM python:3.11\nCOPY start.sh /app\n",  # /app is not known to be a folder: the file is /app itself
    "FROM python:3.11\nCOPY . /app\nFROM python:3.11-slim\nCMD [\"x\"]\n",  # an earlier stage only
    "FROM python:3.11\nCOPY --from=build /src/start.sh /app/start.sh\n",  # another stage's file
    "FROM python:3.11\nCOPY $SRC /app/start.sh\n",  # variables: cannot tell
    "FROM python:3.11\nWORKDIR $HOME\nCOPY . .\n",
    "FROM python:3.11\nCOPY --parents ./start.sh /app/\n",
    "FROM python:3.11\nCOPY . /app\nCOPY other.sh /app/start.sh\n",  # a later copy puts another file there
    "FROM python:3.11\nADD start.sh.tar.gz /app/\n",
    "FROM python:3.11\nCOPY scripts /app\n",  # another folder's contents
], ids=lambda b: b.split("\n", 1)[1].replace("\n", " | ")[:60])
def test_not_resolved_keeps_the_copy(body: str) -> None:
    assert not _copies(body)


def test_dockerignore_that_leaves_the_file_out_keeps_the_copy() -> None:
    body = "FROM python:3.11\nCOPY . /app\n"
    assert not _copies(body, ignore=("*.sh",))
    assert not _copies(body, ignore=("start.sh",))
    assert not _copies(body, ignore=("*", "!requirements.txt"))  # exceptions: unclear, so keep it
    assert _copies(body, ignore=("*.md", ".git"))


def _app(tmp_path: Path, dockerfile: str, dockerignore: str | None = None) -> Path:
    app = tmp_path / "acme-chat"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns(".flymigrate"))
    (app / "Dockerfile").write_text(dockerfile)
    if dockerignore is not None:
        (app / ".dockerignore").write_text(dockerignore)
    return app


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLYMIGRATE_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "flymigrate", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)


ACME_COPIES = """FROM python:3.11-slim
RUN pip install --no-cache-dir vllm==0.6.3
WORKDIR /app
COPY start.sh /app/start.sh
RUN ldconfig
CMD ["/app/start.sh"]
"""


@pytest.mark.parametrize("body", [ACME_COPIES, ACME_COPIES.replace("COPY start.sh /app/start.sh", "COPY . .")],
                         ids=["copy-the-file", "copy-the-folder"])
def test_acme_chat_apply_writes_one_copy_and_the_plan_lists_none(tmp_path: Path, body: str) -> None:
    app = _app(tmp_path, body)
    r = _run(tmp_path, "plan", str(app), "--to", "runpod", "--format", "json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert not [i for i in plan["dockerfile_issues"] if i["kind"] == "files"]
    step = next(s for s in plan["steps"] if s["id"] == "dockerfile")
    assert not [c for c in step["changes"] if "[[files]]" in c]
    r = _run(tmp_path, "apply", str(app), "--to", "runpod", "--yes", "--skip", "weights")
    assert r.returncode == 0, r.stderr
    text = (app / "Dockerfile").read_text()
    copies = [ln for ln in text.splitlines() if ln.startswith("COPY") and ("start.sh" in ln or ln == "COPY . .")]
    assert len(copies) == 1, text
    assert "[[files]]" not in text
    assert "# flymigrate: removed (Fly GPU driver shim): RUN ldconfig" in text  # the rest is still rewritten


def test_left_out_by_dockerignore_the_copy_is_written(tmp_path: Path) -> None:
    app = _app(tmp_path, ACME_COPIES.replace("COPY start.sh /app/start.sh", "COPY . ."), dockerignore="*.sh\n")
    r = _run(tmp_path, "plan", str(app), "--to", "runpod", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [i for i in json.loads(r.stdout)["dockerfile_issues"] if i["kind"] == "files"]
    r = _run(tmp_path, "apply", str(app), "--to", "runpod", "--yes", "--skip", "weights")
    assert r.returncode == 0, r.stderr
    assert "COPY start.sh /app/start.sh" in (app / "Dockerfile").read_text()
