"""Leak scanner: plant unique canary secret values, then prove none of them shows up where it must not.

    canaries = Canaries()                        # fresh, unique values per test
    env = canaries.env(base_env)                 # AWS/HF/Modal/RunPod/GCP creds set to canaries
    canaries.write_secrets(app / "secrets.env")  # a secrets export holding canary values (dotenv/json/env-dump)
    run = run_watched([...], env=env)            # runs the CLI, sampling /proc/*/cmdline of it and its children
    canaries.assert_clean(run=run, paths=[app, state, home])

A canary is searched for raw, base64, url-quoted, hex, JSON-escaped and as its distinctive middle (so a
truncated or re-encoded value is still caught). Files are read as bytes (journals are SQLite: the scan
covers them too, including WAL files). A hit names where it was found, never the whole value.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

# env names that carry credentials the product may read; each gets its own canary
CRED_ENV = (
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "MODAL_TOKEN_SECRET",
    "RUNPOD_API_KEY", "RUNPOD_S3_SECRET_ACCESS_KEY", "FLY_API_TOKEN", "GOOGLE_OAUTH_ACCESS_TOKEN",
)


def _new(tag: str) -> str:
    # shaped like a real secret (letters, digits, a few punctuation marks), unique per run
    return f"cnry{tag}{uuid.uuid4().hex[:20]}Zq"


@dataclass
class WatchedRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    argv_seen: set[str] = field(default_factory=set)  # every cmdline (NUL-joined) of the process tree
    max_children: int = 0
    seconds: float = 0.0


class Canaries:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        for name in CRED_ENV:
            self.values[name] = _new(name.split("_")[0].lower()[:4])
        # values only ever in a secrets export (with awkward characters: quotes, #, =, spaces, unicode)
        self.values["SECRET_PLAIN"] = _new("plain")
        self.values["SECRET_QUOTED"] = "has 'single' \"dbl\" #hash =eq " + _new("quot")
        self.values["SECRET_UNICODE"] = "pässwörd-✓-" + _new("uni")
        self.values["DATABASE_URL"] = "postgres://u:" + _new("dbpw") + "@db.internal:5432/x"
        self.values["OPENAI_API_KEY"] = "sk-" + _new("oai")

    # ------------------------------------------------------------------------------------------ plant
    def env(self, base: Mapping[str, str] | None = None, *, keep: Iterable[str] = ()) -> dict[str, str]:
        """``base`` plus every credential variable set to its canary (``keep`` names are left as in base)."""
        env = dict(os.environ if base is None else base)
        for name in CRED_ENV:
            if name not in keep:
                env[name] = self.values[name]
        return env

    def secret_items(self) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if k not in CRED_ENV}

    def write_secrets(self, path: Path, fmt: str = "dotenv", mode: int = 0o600) -> Path:
        items = self.secret_items()
        if fmt == "dotenv":
            lines = []
            for k, v in items.items():
                if "'" not in v:
                    lines.append(f"{k}='{v}'")
                elif '"' not in v:
                    lines.append(f'{k}="{v}"')
                else:
                    lines.append(f'{k}="""{v}"""')
            text = "# canary export\n" + "\n".join(lines) + "\n"
        elif fmt == "env-dump":
            base = {"PATH": "/usr/bin", "HOME": "/root", "FLY_APP_NAME": "acme", "FLY_REGION": "ord"}
            text = "".join(f"{k}={v}\n" for k, v in {**base, **items}.items())
        elif fmt == "fly-json":
            text = json.dumps([{"Name": k, "Digest": uuid.uuid4().hex[:16], "CreatedAt": "2026-01-01T00:00:00Z"}
                               for k in items])
        else:
            raise ValueError(fmt)
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        return path

    # ------------------------------------------------------------------------------------------ find
    def needles(self) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for name, v in self.values.items():
            raw = v.encode()
            forms = {raw, base64.b64encode(raw), quote(v, safe="").encode(), raw.hex().encode(),
                     json.dumps(v)[1:-1].encode()}
            core = v[v.index("cnry"):]  # the unique part, alone (catches a value cut at a quote or a space)
            forms.add(core.encode())
            forms.add(core[4:-2].encode())  # the random middle, in case the ends were redacted or clipped
            # UTF-16 (Windows-ish exports, error pages) of the core
            forms.add(core.encode("utf-16-le"))
            for f in forms:
                out.append((name, f))
        return out

    def find_in_bytes(self, data: bytes) -> list[str]:
        return sorted({name for name, n in self.needles() if n and n in data})

    def find_in_text(self, text: str) -> list[str]:
        return self.find_in_bytes(text.encode("utf-8", "surrogateescape"))

    def scan_paths(self, roots: Iterable[Path], *, exclude: Iterable[Path] = ()) -> list[str]:
        """Every regular file under each root (symlinks not followed); returns 'path: NAME' hits."""
        excl = {os.path.realpath(p) for p in exclude}
        needles = self.needles()
        hits = []
        for root in roots:
            root = Path(root)
            if not root.exists():
                continue
            walk = [(str(root), [], [root.name])] if root.is_file() else os.walk(root)
            for d, _, files in walk:
                for f in files:
                    p = os.path.join(d, f) if not root.is_file() else str(root)
                    if os.path.realpath(p) in excl or os.path.islink(p) or not os.path.isfile(p):
                        continue
                    try:
                        with open(p, "rb") as fh:
                            data = fh.read(64 * 1024 * 1024)
                    except OSError:
                        continue
                    for name in sorted({name for name, n in needles if n in data}):
                        hits.append(f"{p}: {name}")
        return hits

    def assert_clean(self, *, run: WatchedRun | None = None, texts: Mapping[str, str] | None = None,
                     paths: Iterable[Path] = (), exclude: Iterable[Path] = ()) -> None:
        problems: list[str] = []
        if run is not None:
            for where, text in (("stdout", run.stdout), ("stderr", run.stderr)):
                for name in self.find_in_text(text):
                    problems.append(f"{where}: {name}")
            for argv in run.argv_seen:
                for name in self.find_in_text(argv):
                    problems.append(f"argv of a process ({argv.split(chr(0))[0]} ...): {name}")
        for where, text in (texts or {}).items():
            for name in self.find_in_text(text):
                problems.append(f"{where}: {name}")
        problems += self.scan_paths(paths, exclude=exclude)
        assert not problems, "secret canaries leaked:\n  " + "\n  ".join(problems)


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (via /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            pass
    return out


def _cmdline(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def run_watched(args: list[str], *, env: Mapping[str, str], cwd: str | Path | None = None, timeout: float = 180,
                stdin: bytes | None = None, interval: float = 0.005) -> WatchedRun:
    """Run a command, sampling the argv of it and every descendant until it exits."""
    t0 = time.monotonic()
    p = subprocess.Popen(args, env=dict(env), cwd=str(cwd) if cwd else None, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
    seen: set[str] = set()
    maxc = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal maxc
        while not done.is_set():
            pids = _tree(p.pid)
            maxc = max(maxc, len(pids) - 1)
            for c in pids:
                cl = _cmdline(c)
                if cl:
                    seen.add(cl)
            time.sleep(interval)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        out, err = p.communicate(stdin, timeout=timeout)
    finally:
        done.set()
        th.join()
        if p.poll() is None:
            p.kill()
            p.wait()
    return WatchedRun(list(args), p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                      seen, maxc, time.monotonic() - t0)


def flymigrate(*cli_args: str) -> list[str]:
    return [sys.executable, "-m", "flymigrate", *cli_args]
