"""Fly volumes: ``fly-volume://APP/VOLUME/PATH`` as a source, driving ``flyctl`` (research: fly.md section 6).

GPU machines no longer boot on Fly, so the volume is reached through a small CPU **helper machine** with the
volume attached:

1. ``flyctl auth whoami``: flyctl is on PATH and logged in (``FLY_API_TOKEN`` in the environment also works;
   it is passed through the environment only, never argv).
2. ``flyctl volumes list -a APP --json``: find the volume by name or ``vol_`` id (and its region).
3. ``flyctl machines list -a APP --json``: reuse a helper left by an earlier run (metadata
   ``flymigrate-helper=VOL_ID``), starting it if stopped; otherwise
   ``flyctl machine run ... --vm-size shared-cpu-1x -v VOL_ID:/flymigrate-src --metadata flymigrate-helper=VOL_ID``.
4. ``flyctl ssh console -a APP --machine ID -q -C "sh -c '...'"`` (no PTY: ``-C`` disables it, so the stream
   is binary-safe): list files with sizes and sha256 (NUL-separated records), then stream each file from a
   byte offset (``tail -c +N``) for resume.
5. ``flyctl machine destroy ID -a APP --force`` when done, also after a failure (``close()``; an ``atexit``
   hook covers an unhandled exit; after a SIGKILL the next run finds the helper by its metadata, reuses it and
   removes it at the end).

:func:`dry_run_commands` returns the exact commands, for ``--dry-run``.
"""

from __future__ import annotations

import atexit
import json
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from ..errors import RemoteError, UserError
from .base import AdapterOptions, Entry, ParsedURL, SourceCaps, TransientError

MOUNT = "/flymigrate-src"
HELPER_IMAGE = "alpine:3.20"
HELPER_VM_SIZE = "shared-cpu-1x"
META_KEY = "flymigrate-helper"
INSTALL_HINT = "Install flyctl (https://fly.io/docs/flyctl/install/) and make sure `flyctl` (or `fly`) is on PATH."
LOGIN_HINT = "Run `flyctl auth login`, or set FLY_API_TOKEN in the environment."
_CMD_TIMEOUT = 300  # per flyctl control command


def _flyctl(env: Mapping[str, str]) -> str:
    path = env.get("PATH")
    exe = shutil.which("flyctl", path=path) or shutil.which("fly", path=path)
    if not exe:
        raise UserError("flyctl was not found on PATH.", hint=INSTALL_HINT)
    return exe


def _sq(s: str) -> str:
    return shlex.quote(s)


def _remote_root(path: str) -> str:
    return f"{MOUNT}/{path}".rstrip("/") if path else MOUNT


def list_script(path: str) -> str:
    """Remote shell: NUL-separated ``SIZE<TAB>SHA256<TAB>RELPATH`` records for every regular file."""
    root = _remote_root(path)
    per_file = (
        'for f; do s=$(stat -c %s "$f") && h=$(sha256sum "$f" | cut -d" " -f1) && '
        'printf "%s\\t%s\\t%s\\0" "$s" "$h" "${f#./}"; done'
    )
    return (
        f"if [ -f {_sq(root)} ]; then printf 'file\\0' && cd \"$(dirname {_sq(root)})\" && "
        f"set -- \"$(basename {_sq(root)})\" && {per_file}; "
        f"elif [ -d {_sq(root)} ]; then printf 'dir\\0' && cd {_sq(root)} && find . -type f -exec sh -c {_sq(per_file)} _ {{}} +; "
        f"else echo 'flymigrate: no such path' >&2; exit 3; fi"
    )


def read_script(path: str, rel: str, offset: int, is_file_root: bool) -> str:
    root = _remote_root(path)
    target = root if is_file_root else f"{root}/{rel}"
    if offset:
        return f"exec tail -c +{offset + 1} {_sq(target)}"
    return f"exec cat {_sq(target)}"


def helper_run_args(app: str, vol_id: str, region: str | None) -> list[str]:
    args = ["machine", "run", HELPER_IMAGE, "-a", app]
    if region:
        args += ["-r", region]
    args += [
        "--vm-size", HELPER_VM_SIZE,
        "-v", f"{vol_id}:{MOUNT}",
        "--metadata", f"{META_KEY}={vol_id}",
        "--name", f"flymigrate-helper-{vol_id}".replace("_", "-")[:60],
        "--restart", "no",
        "--autostop", "off",
        "--detach",
        "--", "/bin/sh", "-c", "while :; do sleep 3600; done",
    ]
    return args


def ssh_args(app: str, machine_id: str, script: str) -> list[str]:
    return ["ssh", "console", "-a", app, "--machine", machine_id, "-q", "-C", f"sh -c {_sq(script)}"]


class _ProcReader:
    """Binary stdout of one ``flyctl ssh console`` process; a non-zero exit at EOF is a TransientError."""

    def __init__(self, proc: subprocess.Popen[bytes], what: str, expect: int) -> None:
        self._proc = proc
        self._what = what
        self._left = expect
        self.closed = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        assert self._proc.stdout is not None
        n = self._proc.stdout.readinto(b)  # type: ignore[attr-defined]
        if n:
            self._left -= n
            return int(n)
        rc = self._proc.wait()
        if rc != 0 or self._left > 0:
            err = b""
            if self._proc.stderr is not None:
                try:
                    err = self._proc.stderr.read(2000)
                except Exception:
                    pass
            detail = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
            raise TransientError(
                f"{self._what}: flyctl ssh stream ended early (exit {rc}, {self._left} bytes missing)"
                + (f": {detail[0][:200]}" if detail else "")
            )
        return 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            out = bytearray()
            buf = bytearray(1024 * 1024)
            while True:
                k = self.readinto(memoryview(buf))
                if not k:
                    return bytes(out)
                out += buf[:k]
        buf = bytearray(n)
        k = self.readinto(memoryview(buf))
        return bytes(buf[:k])

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._proc.poll() is None:
            self._proc.kill()
        try:
            self._proc.wait(10)
        except Exception:
            pass
        for s in (self._proc.stdout, self._proc.stderr):
            try:
                if s:
                    s.close()
            except Exception:
                pass

    def __enter__(self) -> _ProcReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FlyVolumeSource:
    caps = SourceCaps(ranged_read=True, hash_kind="sha256", seekable=False)

    def __init__(self, url: ParsedURL, opts: AdapterOptions) -> None:
        self.url = url.raw
        self.app = url.root
        self.volume_ref = url.volume or ""
        self.path = url.path
        self.opts = opts
        self.env = dict(opts.env)
        self.warnings: list[str] = []
        self.volume: dict[str, Any] | None = None
        self.machine_id: str | None = None
        self.created_helper = False
        self._is_file_root = False
        self._lock = threading.Lock()
        self._closed = False
        self.commands: list[list[str]] = []  # what was run (argv without the executable), for logs/tests
        atexit.register(self.close)

    # ------------------------------------------------------------------ flyctl plumbing
    def _run(self, args: list[str], *, timeout: float = _CMD_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
        exe = _flyctl(self.env)
        self.commands.append(list(args))
        try:
            cp = subprocess.run(
                [exe, *args], env=self.env, capture_output=True, text=True, encoding="utf-8", errors="surrogateescape",
                timeout=timeout, stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise TransientError(f"`flyctl {' '.join(args[:3])}` timed out after {timeout:.0f}s.") from None
        except OSError as exc:
            raise UserError(f"could not run flyctl ({exc.strerror}).", hint=INSTALL_HINT) from None
        if check and cp.returncode != 0:
            msg = (cp.stderr or cp.stdout or "").strip().splitlines()
            last = msg[-1][:300] if msg else f"exit {cp.returncode}"
            low = last.lower()
            if "not logged in" in low or "no access token" in low or "unauthorized" in low:
                raise UserError(f"flyctl is not logged in ({last}).", hint=LOGIN_HINT)
            if "could not find app" in low or "app not found" in low:
                raise UserError(f"Fly app {self.app!r} not found ({last}).")
            raise TransientError(f"`flyctl {' '.join(args[:2])}` failed: {last}")
        return cp

    def _json(self, args: list[str]) -> Any:
        cp = self._run(args)
        try:
            return json.loads(cp.stdout or "null")
        except ValueError:
            raise RemoteError(f"`flyctl {' '.join(args[:2])}` did not print JSON.") from None

    def preflight(self) -> None:
        exe = _flyctl(self.env)
        self.commands.append(["auth", "whoami"])
        try:
            cp = subprocess.run(
                [exe, "auth", "whoami"], env=self.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired):
            raise UserError("flyctl did not answer `flyctl auth whoami`.", hint=LOGIN_HINT) from None
        if cp.returncode != 0:
            raise UserError("flyctl is not logged in.", hint=LOGIN_HINT)

    def find_volume(self) -> dict[str, Any]:
        vols = self._json(["volumes", "list", "-a", self.app, "--json"]) or []
        ref = self.volume_ref
        byid = [v for v in vols if v.get("id") == ref]
        if byid:
            return dict(byid[0])
        named = [v for v in vols if v.get("name") == ref]
        if not named:
            have = ", ".join(sorted({str(v.get("name")) for v in vols})) or "none"
            raise UserError(f"Fly app {self.app!r} has no volume named {ref!r} (volumes: {have}).")
        if len(named) > 1:
            ids = ", ".join(f"{v.get('id')} ({v.get('region')})" for v in named)
            raise UserError(
                f"Fly app {self.app!r} has {len(named)} volumes named {ref!r}: {ids}.",
                hint=f"Pick one by id: fly-volume://{self.app}/{named[0].get('id')}/{self.path}",
            )
        return dict(named[0])

    def _machines(self) -> list[dict[str, Any]]:
        return list(self._json(["machines", "list", "-a", self.app, "--json"]) or [])

    @staticmethod
    def _meta(m: Mapping[str, Any]) -> Mapping[str, Any]:
        cfg = m.get("config") or {}
        return (cfg.get("metadata") or {}) if isinstance(cfg, Mapping) else {}

    def _find_helper(self, vol_id: str) -> dict[str, Any] | None:
        for m in self._machines():
            if self._meta(m).get(META_KEY) == vol_id and m.get("state") not in ("destroyed", "destroying"):
                return m
        return None

    def ensure_helper(self) -> str:
        with self._lock:
            if self.machine_id:
                return self.machine_id
            self.preflight()
            vol = self.volume = self.find_volume()
            vol_id = str(vol["id"])
            helper = self._find_helper(vol_id)
            attached = vol.get("attached_machine_id")
            if helper is None and attached:
                raise UserError(
                    f"volume {vol_id} is attached to machine {attached}, so a helper machine cannot mount it.",
                    hint=(
                        f"Destroy that machine if it can no longer run (`flyctl machine destroy {attached} -a {self.app}`), "
                        f"or fork the volume (`flyctl volumes fork {vol_id} -a {self.app}`) and use the fork's id."
                    ),
                )
            if helper is not None:
                self.machine_id = str(helper["id"])
                if helper.get("state") != "started":
                    self._run(["machine", "start", self.machine_id, "-a", self.app])
                self.created_helper = True  # ours (by metadata): removed at the end
            else:
                self.created_helper = True  # from here on, close() must look for it even if run fails
                self._run(helper_run_args(self.app, vol_id, vol.get("region")), timeout=600)
                helper = self._find_helper(vol_id)
                if helper is None:
                    raise RemoteError(f"flyctl started a helper machine for {vol_id} but it is not listed.")
                self.machine_id = str(helper["id"])
            return self.machine_id

    def destroy_helper(self) -> None:
        mid = self.machine_id
        if not self.created_helper:
            return
        try:
            if mid is None and self.volume:
                h = self._find_helper(str(self.volume["id"]))
                mid = str(h["id"]) if h else None
            if mid:
                self._run(["machine", "destroy", mid, "-a", self.app, "--force"], check=True)
        except Exception as exc:  # never mask the original error; say what to run by hand
            self.warnings.append(
                f"could not remove helper machine {mid}: {exc}. Remove it with `flyctl machine destroy {mid} -a {self.app} --force`."
            )
        self.machine_id = None
        self.created_helper = False

    # ------------------------------------------------------------------ Source protocol
    def describe(self) -> str:
        return f"fly-volume://{self.app}/{self.volume_ref}/{self.path}".rstrip("/")

    def list(self) -> Iterator[Entry]:
        mid = self.ensure_helper()
        cp = self._run(ssh_args(self.app, mid, list_script(self.path)), timeout=24 * 3600, check=False)
        if cp.returncode == 3 or "no such path" in (cp.stderr or ""):
            raise UserError(f"{self.url}: no such file or folder on the volume.")
        if cp.returncode != 0:
            last = (cp.stderr or "").strip().splitlines()[-1:] or [f"exit {cp.returncode}"]
            raise TransientError(f"listing {self.url} over flyctl ssh failed: {last[0][:300]}")
        kind, _, body = cp.stdout.partition("\0")
        if kind not in ("file", "dir"):
            raise RemoteError(f"unexpected listing from the helper machine: {cp.stdout[:100]!r}")
        self._is_file_root = kind == "file"
        entries = []
        for rec in body.split("\0"):
            if not rec:
                continue
            try:
                size_s, sha, rel = rec.split("\t", 2)
                size = int(size_s)
            except ValueError:
                raise RemoteError(f"unexpected listing record from the helper machine: {rec[:100]!r}") from None
            entries.append(Entry(rel, size, sha256=sha))
        yield from sorted(entries, key=lambda e: e.path)

    def open(self, entry: Entry, offset: int = 0) -> BinaryIO:
        mid = self.ensure_helper()
        exe = _flyctl(self.env)
        args = ssh_args(self.app, mid, read_script(self.path, entry.path, offset, self._is_file_root))
        self.commands.append(list(args))
        try:
            proc = subprocess.Popen(
                [exe, *args], env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                bufsize=0,
            )
        except OSError as exc:
            raise UserError(f"could not run flyctl ({exc.strerror}).", hint=INSTALL_HINT) from None
        return _ProcReader(proc, f"{self.url}/{entry.path}", entry.size - offset)  # type: ignore[return-value]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.destroy_helper()
        try:
            atexit.unregister(self.close)
        except Exception:
            pass


def dry_run_commands(url: ParsedURL, env: Mapping[str, str] | None = None) -> list[str]:
    """The flyctl commands a transfer from ``url`` runs, in order (placeholders for ids learned at run time)."""
    env = env if env is not None else os.environ
    try:
        exe = os.path.basename(_flyctl(env))
    except UserError:
        exe = "flyctl"
    app, vol, path = url.root, url.volume or "", url.path
    vol_id = vol if vol.startswith("vol_") else "<VOLUME_ID of " + vol + ">"
    q = shlex.join
    cmds = [
        [exe, "auth", "whoami"],
        [exe, "volumes", "list", "-a", app, "--json"],
        [exe, "machines", "list", "-a", app, "--json"],
        [exe, *helper_run_args(app, vol_id, "<REGION of the volume>")],
        [exe, "machines", "list", "-a", app, "--json"],
        [exe, *ssh_args(app, "<HELPER_ID>", list_script(path))],
        [exe, *ssh_args(app, "<HELPER_ID>", read_script(path, "<FILE>", 0, False))],
        [exe, *ssh_args(app, "<HELPER_ID>", read_script(path, "<FILE>", 12345, False))],
        [exe, "machine", "destroy", "<HELPER_ID>", "-a", app, "--force"],
    ]
    notes = [
        "", "", "# reuse a helper with metadata flymigrate-helper=<VOLUME_ID> if one exists (started if stopped)",
        "# else start one:", "", "# list files (size, sha256)", "# stream each file", "# ...or resume it from byte 12345",
        "# at the end, also after a failure",
    ]
    out = []
    for note, c in zip(notes, cmds):
        if note:
            out.append(note)
        out.append(q(c))
    return out


def source(url: ParsedURL, opts: AdapterOptions) -> FlyVolumeSource:
    return FlyVolumeSource(url, opts)
