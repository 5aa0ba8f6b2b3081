"""A stand-in ``flyctl`` for tests: behaves like the real one for the subcommands flymigrate uses.

Installed by the tests as an executable named ``flyctl`` in a temp dir put first on PATH. State lives in a
JSON file (``FAKE_FLY_STATE``)::

    {"logged_in": true,
     "apps": {"APP": {"volumes": [{"id": "vol_x", "name": "models", "region": "ord",
                                  "attached_machine_id": null, "dir": "/tmp/.../voldata"}],
                      "machines": []}}}

Each invocation is appended to ``FAKE_FLY_LOG`` as a JSON line ``{"argv": [...], "token_in_env": bool}``.
``flyctl ssh console ... -C CMD`` runs CMD with ``sh`` locally, the helper's mount point replaced by the
volume's directory. Fault injection: ``FAKE_FLY_SSH_CUT=N`` makes the next streaming read (``cat``/``tail``)
stop after N bytes with exit 1 (once: the marker file ``FAKE_FLY_SSH_CUT_MARK`` is created);
``FAKE_FLY_FAIL_RUN=1`` makes ``machine run`` fail after creating the machine (half-created helper).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import sys

MOUNT = "/flymigrate-src"


def _load() -> dict:
    with open(os.environ["FAKE_FLY_STATE"]) as fh:
        return json.load(fh)


def _save(st: dict) -> None:
    p = os.environ["FAKE_FLY_STATE"]
    with open(p + ".tmp", "w") as fh:
        json.dump(st, fh, indent=1)
    os.replace(p + ".tmp", p)


def _opt(argv: list[str], *names: str) -> str | None:
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def _opts(argv: list[str], *names: str) -> list[str]:
    out = []
    for i, a in enumerate(argv):
        if a in names and i + 1 < len(argv):
            out.append(argv[i + 1])
    return out


def die(msg: str, code: int = 1) -> None:
    print(f"Error: {msg}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str]) -> int:
    log = os.environ.get("FAKE_FLY_LOG")
    if log:
        with open(log, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(json.dumps({"argv": argv, "token_in_env": bool(os.environ.get("FLY_API_TOKEN"))}) + "\n")
    st = _load()
    words = [a for a in argv if not a.startswith("-")]
    if argv[:2] == ["auth", "whoami"]:
        if not st.get("logged_in", True):
            die("No access token available. Please login with 'flyctl auth login'")
        print("tester@example.com")
        return 0
    if not st.get("logged_in", True):
        die("No access token available. Please login with 'flyctl auth login'")
    app_name = _opt(argv, "-a", "--app")
    app = st["apps"].get(app_name or "")
    if app is None:
        die(f"Could not find App \"{app_name}\"")
    cmd = words[:2]
    if cmd == ["volumes", "list"] or cmd == ["volume", "list"]:
        print(json.dumps([{k: v for k, v in vol.items() if k != "dir"} for vol in app["volumes"]]))
        return 0
    if cmd in (["machines", "list"], ["machine", "list"]):
        print(json.dumps(app["machines"]))
        return 0
    if cmd == ["machine", "run"]:
        vol_spec = _opt(argv, "-v", "--volume") or ""
        vol_id, _, mount = vol_spec.partition(":")
        vol = next((v for v in app["volumes"] if v["id"] == vol_id or v["name"] == vol_id), None)
        if vol is None:
            die(f"volume {vol_id} not found")
        if vol.get("attached_machine_id"):
            die(f"volume {vol_id} is already attached to machine {vol['attached_machine_id']}")
        meta = dict(m.split("=", 1) for m in _opts(argv, "--metadata", "-m"))
        mid = "m" + secrets.token_hex(6)
        machine = {
            "id": mid,
            "name": _opt(argv, "--name") or mid,
            "state": "started",
            "region": _opt(argv, "-r", "--region") or vol["region"],
            "config": {"metadata": meta, "mounts": [{"volume": vol["id"], "path": mount}],
                       "guest": {"size": _opt(argv, "--vm-size")}},
        }
        app["machines"].append(machine)
        vol["attached_machine_id"] = mid
        _save(st)
        if os.environ.get("FAKE_FLY_FAIL_RUN"):
            die("timeout waiting for machine to start")
        print(f"Machine ID: {mid}")
        return 0
    if cmd == ["machine", "start"]:
        mid = words[2]
        for m in app["machines"]:
            if m["id"] == mid:
                m["state"] = "started"
                _save(st)
                print(f"{mid} has been started")
                return 0
        die(f"machine {mid} not found")
    if cmd in (["machine", "destroy"], ["machines", "destroy"]):
        mid = words[2]
        for m in list(app["machines"]):
            if m["id"] == mid:
                if m["state"] == "started" and "--force" not in argv and "-f" not in argv:
                    die("machine is running, use --force")
                app["machines"].remove(m)
                for v in app["volumes"]:
                    if v.get("attached_machine_id") == mid:
                        v["attached_machine_id"] = None
                _save(st)
                print(f"machine {mid} was found and is currently in started state, attempting to destroy...")
                return 0
        die(f"machine {mid} not found")
    if cmd == ["ssh", "console"]:
        mid = _opt(argv, "--machine")
        m = next((m for m in app["machines"] if m["id"] == mid), None)
        if m is None or m["state"] != "started":
            die(f"machine {mid} is not running")
        command = _opt(argv, "-C", "--command")
        if not command:
            die("interactive console not supported by the fake")
        vol_id = m["config"]["mounts"][0]["volume"]
        vol = next(v for v in app["volumes"] if v["id"] == vol_id)
        local = command.replace(MOUNT, vol["dir"])
        cut = os.environ.get("FAKE_FLY_SSH_CUT")
        mark = os.environ.get("FAKE_FLY_SSH_CUT_MARK", "")
        streaming = ("exec cat " in local or "exec tail " in local)
        if cut and streaming and mark and not os.path.exists(mark):
            open(mark, "w").close()
            p = subprocess.Popen(["sh", "-c", local], stdout=subprocess.PIPE)
            assert p.stdout is not None
            data = p.stdout.read(int(cut))
            p.kill()
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            print("Error: ssh: connection lost", file=sys.stderr)
            return 1
        return subprocess.call(["sh", "-c", local])
    die(f"fake flyctl: unsupported command {argv!r}", 2)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
