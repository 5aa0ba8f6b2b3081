"""Start a process in a container-shaped root without touching the host's ``/``.

Run as ``unshare --user --map-root-user --mount python3 nsroot.py SPEC.json`` (the harness does this). Inside
the new user + mount namespace it assembles the container's root under ``spec["root"]`` (a host temp dir):

* ``/`` is an overlay whose lower layer is empty and whose upper layer is ``ROOT/up/_root``: paths the image
  creates at the top (``/app``, ``/weights``, a ``/data`` symlink) live there;
* every host top-level directory is an overlay of its own (lower = the host directory, upper =
  ``ROOT/up/<name>``), so the container can write anywhere (``/root/.ollama``, ``/usr/local/bin``) as in a real
  image's copy-on-write layer, while the host's files never change; a directory that holds other mounts (and so
  cannot be an overlay lower layer) is bind-mounted read-only instead; ``/proc``, ``/dev``, ``/sys`` are bound;
* ``/tmp`` is the container's own;
* volumes are bind-mounted at their mount paths (read-only when the platform mounts them so; a mount path that
  is a symlink in the image is followed inside the root, as runc does).

The upper layers persist between starts in the same ROOT, so the image build (RUN steps) and the run see the
same image. Then it ``chroot``s, ``chdir``s to the working directory and ``execvpe``s the argv with the
environment it inherited (secret values never pass through a file or an argv).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
_libc = ctypes.CDLL(None, use_errno=True)
SPECIAL = {"proc", "dev", "sys"}


def mount(src: str, dst: str, flags: int, fstype: str | None = None, data: str | None = None) -> None:
    if _libc.mount(src.encode(), dst.encode(), fstype.encode() if fstype else None, flags,
                   data.encode() if data else None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {src} -> {dst}: {os.strerror(e)}")


def bind(src: str, dst: str, ro: bool) -> None:
    mount(src, dst, MS_BIND | MS_REC)
    if ro:
        try:
            mount("none", dst, MS_REMOUNT | MS_BIND | MS_RDONLY)
        except OSError:
            pass  # a locked mount keeps its flags


def overlay(lower: str, upper: str, work: str, dst: str) -> None:
    os.makedirs(upper, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    mount("overlay", dst, 0, "overlay", f"userxattr,lowerdir={lower},upperdir={upper},workdir={work}")


def resolve_in(root: str, path: str) -> str:
    """``path`` inside ``root``, following symlinks within the root (never escaping it)."""
    cur = "/"
    parts = [p for p in path.split("/") if p]
    hops = 0
    while parts:
        p = parts.pop(0)
        nxt = os.path.join(cur, p)
        full = root + nxt
        if os.path.islink(full) and hops < 40:
            hops += 1
            t = os.readlink(full)
            parts = [x for x in t.split("/") if x] + parts
            cur = "/" if t.startswith("/") else cur
            continue
        cur = os.path.normpath(nxt)
    return root + cur


def assemble(spec: dict) -> str:
    base = spec["root"].rstrip("/")
    mnt = base + "/mnt"
    os.makedirs(mnt, exist_ok=True)
    os.makedirs(base + "/empty", exist_ok=True)
    mount("none", "/", MS_REC | MS_PRIVATE)
    overlay(base + "/empty", base + "/up/_root", base + "/wk/_root", mnt)
    for name in sorted(os.listdir("/")):
        hp, dst = "/" + name, mnt + "/" + name
        if name == "tmp":
            os.makedirs(dst, exist_ok=True)
            os.chmod(dst, 0o1777)
            continue
        if os.path.islink(hp):
            if not os.path.lexists(dst):
                os.symlink(os.readlink(hp), dst)
            continue
        if os.path.lexists(dst) and not os.path.isdir(dst):
            continue  # the image replaced it
        if os.path.isdir(hp):
            os.makedirs(dst, exist_ok=True)
            if name in SPECIAL:
                bind(hp, dst, ro=False)
                continue
            try:
                overlay(hp, f"{base}/up/{name}", f"{base}/wk/{name}", dst)
            except OSError:
                try:
                    bind(hp, dst, ro=True)
                except OSError:
                    pass
        elif os.path.isfile(hp):
            if not os.path.exists(dst):
                open(dst, "a").close()
            try:
                bind(hp, dst, ro=True)
            except OSError:
                pass
    for m in spec.get("mounts", []):
        dst = resolve_in(mnt, m["dst"])
        os.makedirs(dst, exist_ok=True)
        bind(m["src"], dst, ro=m.get("ro", False))
    return mnt


def main() -> None:
    spec = json.load(open(sys.argv[1], encoding="utf-8"))
    status = spec.get("status")
    mnt = assemble(spec)
    os.chroot(mnt)
    try:
        os.chdir(spec.get("workdir") or "/")
    except OSError as e:
        _fatal(status, f"cannot enter the working directory {spec.get('workdir')}: {e.strerror}")
        raise SystemExit(127)
    argv = spec["argv"]
    if not argv:
        _fatal(status, "no command: the image has neither ENTRYPOINT nor CMD")
        raise SystemExit(127)
    try:
        os.execvpe(argv[0], argv, dict(os.environ))
    except FileNotFoundError:
        _fatal(status, f"exec {argv[0]!r}: executable file not found in $PATH (argv {argv})")
    except PermissionError:
        _fatal(status, f"exec {argv[0]!r}: permission denied (not executable)")
    except OSError as e:
        _fatal(status, f"exec {argv[0]!r}: {e.strerror}")
    raise SystemExit(127)


def _fatal(status: str | None, msg: str) -> None:
    print(f"harness: {msg}", file=sys.stderr, flush=True)
    if status:
        with open(status, "a", encoding="utf-8") as f:
            f.write(json.dumps({"fatal": msg}) + "\n")


if __name__ == "__main__":
    main()
