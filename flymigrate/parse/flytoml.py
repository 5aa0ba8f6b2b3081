"""fly.toml -> :class:`flymigrate.model.FlyApp`.

The pipeline copies flyctl's (``internal/appconfig/serde.go`` + ``patches.go``): decode TOML into a raw
dict, apply flyctl's normalising patches, then build the typed model. Unlike flyctl, which silently drops
unknown keys, every key is either understood or reported as a finding with ``fly.toml:LINE`` (kompose's
lesson). Impossible values (``internal_port = "eighty"``, ``memory = 0``, a mount at ``/``) are collected and
raised together as one :class:`ConfigError` (exit 2).

Also reads ``fly.json`` / ``fly.yaml``, which flyctl accepts with the same schema (no line numbers there).
"""

from __future__ import annotations

import json
import re
import stat
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..gpus import (
    CPU_SIZE_PRESETS,
    DEFAULT_GPU_VM_SIZE,
    FLY_GPU_KINDS,
    GPU_SIZE_PRESETS,
    normalise_gpu_kind,
)
from ..model import (
    Build,
    Check,
    Concurrency,
    FileInjection,
    Finding,
    FlyApp,
    GpuSpec,
    Mount,
    Port,
    Service,
    Vm,
)
from .text import decode_text
from .tomllines import LineIndex
from .units import duration_s, go_str, human_size_gb, ram_mb

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a fly.toml is a few KB; refuse absurd inputs early

# Known keys per section (flyctl's Config structs). Anything else is reported as unknown.
TOP_KEYS = {
    "app", "primary_region", "kill_signal", "kill_timeout", "swap_size_mb", "console_command",
    "host_dedication_id", "machine_config", "container", "experimental", "build", "deploy", "env",
    "processes", "mounts", "mount", "http_service", "services", "checks", "files", "machine_checks",
    "restart", "vm", "compute", "computes", "statics", "metrics", "metric",
}
BUILD_KEYS = {"image", "dockerfile", "ignorefile", "build-target", "build_target", "args", "builder",
              "buildpacks", "builtin", "settings", "compose", "compression", "compression_level"}
DEPLOY_KEYS = {"strategy", "max_unavailable", "wait_timeout", "release_command", "release_command_timeout",
               "release_command_vm", "seed_command"}
VM_KEYS = {"size", "memory", "processes", "cpu_kind", "cpus", "memory_mb", "max_memory_mb", "gpus", "gpu_kind",
           "host_dedication_id", "kernel_args", "persist_rootfs"}
MOUNT_KEYS = {"source", "destination", "initial_size", "snapshot_retention", "scheduled_snapshots",
              "auto_extend_size_threshold", "auto_extend_size_increment", "auto_extend_size_limit", "processes"}
SERVICE_KEYS = {"protocol", "internal_port", "auto_stop_machines", "auto_start_machines", "min_machines_running",
                "processes", "concurrency", "ports", "tcp_checks", "http_checks", "machine_checks"}
HTTP_SERVICE_KEYS = {"internal_port", "force_https", "auto_stop_machines", "auto_start_machines",
                     "min_machines_running", "processes", "concurrency", "checks", "machine_checks",
                     "tls_options", "http_options"}
CONCURRENCY_KEYS = {"type", "soft_limit", "hard_limit"}
CHECK_KEYS = {"interval", "timeout", "grace_period", "method", "path", "protocol", "tls_skip_verify",
              "tls_server_name", "headers", "port", "type", "processes"}
PORT_KEYS = {"port", "start_port", "end_port", "handlers", "force_https", "tls_options", "http_options",
             "proxy_proto_options"}
FILES_KEYS = {"guest_path", "local_path", "raw_value", "secret_name", "processes"}
EXPERIMENTAL_KEYS = {"cmd", "entrypoint", "exec", "auto_rollback", "enable_consul", "enable_etcd",
                     "lazy_load_images", "machine_config", "attached", "kill_timeout", "metrics_port",
                     "metrics_path", "private_network", "allowed_public_ports"}
AUTO_STOP_VALUES = {"off", "stop", "suspend"}
KILL_SIGNALS = {"SIGINT", "SIGTERM", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGSTOP"}

# Keys that exist on Fly and have no equivalent on any target: reported once, as info, so the plan
# says what is dropped (kompose-style), with the user's own key name.
NO_EQUIVALENT = {
    "statics": "Fly Proxy served [[statics]] from the VM; serve them from the app or a bucket/CDN",
    "metrics": "Fly's managed Prometheus scrape ([metrics]) has no equivalent; export metrics yourself",
    "restart": "[[restart]] policies: the targets restart failed containers themselves",
    "machine_checks": "deploy-time machine_checks have no equivalent; run them in CI",
    "console_command": "console_command is for `fly console`; no equivalent",
    "host_dedication_id": "dedicated Fly hosts have no equivalent",
    "swap_size_mb": "swap: none of the targets offers swap; size memory instead",
    "kill_signal": "the targets send SIGTERM on scale-down; make the server handle it",
    "statics.tigris_bucket": "",
}


class _Ctx:
    def __init__(self, path: str, lines: LineIndex | None) -> None:
        self.path = path
        self.lines = lines
        self.findings: list[Finding] = []
        self.errors: list[str] = []
        self.single_tables: set[str] = set()  # sections written as [x] (not [[x]]) in the file

    def where(self, *path: object) -> str:
        line = None
        if self.lines is not None:
            line = self.lines.line(*path)
            if line is None and len(path) >= 2 and isinstance(path[1], int):
                line = self.lines.line(path[0], *path[2:])
            if line is None and path and (len(path) == 1 or not isinstance(path[1], int)):
                line = self.lines.line(path[0], 0, *path[1:])  # [[x]] written where [x] is documented
        return f"{self.path}:{line}" if line else self.path

    def warn(self, code: str, msg: str, *path: object, severity: str = "warning", step: str | None = None) -> None:
        self.findings.append(Finding(severity, code, msg, self.where(*path) if path else self.path, step))  # type: ignore[arg-type]

    def error(self, msg: str, *path: object) -> None:
        self.errors.append(f"{self.where(*path)}: {msg}")


def _as_list_of_tables(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return list(value)
    return None


def _int(ctx: _Ctx, value: Any, what: str, *path: object, minimum: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        ctx.error(f"{what} must be a number, not {str(value).lower()}.", *path)
        return None
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        n = int(value.strip())  # flyctl patches numeric strings to ints
    else:
        ctx.error(f"{what} must be a whole number, got {value!r}. Write it without quotes, e.g. {what.split()[-1]} = 8080.", *path)
        return None
    if minimum is not None and n < minimum:
        ctx.error(f"{what} must be at least {minimum}, got {n}.", *path)
        return None
    return n


def _strlist(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


def _unknown(ctx: _Ctx, table: dict[str, Any], known: set[str], label: str, *path: object) -> None:
    for key in table:
        if key not in known:
            ctx.warn("unknown-key", f"unknown key `{label}{key}`: flyctl ignores it, and so does the migration.",
                     *path, key)


_DEEP_KEY_RE = re.compile(r"""^[ \t]*\[*[ \t]*(?:(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')[ \t]*\.[ \t]*){64}""", re.M)


def _too_deep(shown: str) -> ConfigError:
    # the stdlib parsers recurse per [ / { level: a hostile or broken file must not become an internal error
    return ConfigError(f"{shown} nests arrays or tables too deeply to be a fly.toml.", where=None,
                       hint="Check the file; a fly.toml nests a few levels at most.")


def load_fly_config(path: Path, *, display: str | None = None) -> FlyApp:
    """Read and normalise a fly.toml (or fly.json / fly.yaml). Raises ConfigError (exit 2) on bad input."""
    shown = display or path.name
    if not path.exists():
        raise ConfigError(
            f"no {path.name} here ({path}).",
            hint="Run flymigrate from the Fly app's folder, pass the folder, or point at the file with --config PATH.",
        )
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a fly.toml.", hint="Pass the file with --config PATH.")
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            # /dev/zero, a FIFO or a socket would be read forever (or block): refuse before opening it
            raise ConfigError(f"{shown} is not a regular file (a device, pipe or socket).",
                              hint="Point --config at the app's fly.toml.")
        size = st.st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{shown} is {size // 1024} KiB; a fly.toml is a few KB, so this is not one.",
                              hint="Check the path given with --config.")
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)  # bounded even if the file grows while we read it
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{shown} is over {MAX_CONFIG_BYTES // 1024} KiB; a fly.toml is a few KB, so this is "
                              "not one.", hint="Check the path given with --config.")
    except PermissionError:
        raise ConfigError(f"cannot read {shown}: permission denied.", hint="Check the file's permissions.") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {shown}: {exc.strerror}.") from None
    text = decode_text(data, shown)
    suffix = path.suffix.lower()
    if not text.strip():
        raise ConfigError("the file is empty.", where=shown,
                          hint="Point at the app's real fly.toml (`fly config save -a APP` writes it), or pass "
                          "--config PATH.")
    if suffix not in (".json", ".yaml", ".yml") and all(
            not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise ConfigError("the file has no settings, only comments.", where=shown,
                          hint="Point at the app's real fly.toml (`fly config save -a APP` writes it).")
    if suffix == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc.msg}.", where=f"{shown}:{exc.lineno}",
                              hint="Fix the syntax; `fly config validate` checks it too.") from None
        except RecursionError:
            raise _too_deep(shown) from None
        lines = None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{shown}:{mark.line + 1}" if mark is not None else shown
            raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}.", where=where) from None
        except RecursionError:
            raise _too_deep(shown) from None
        lines = None
    else:
        if _DEEP_KEY_RE.search(text):
            # tomllib's memory grows with the square of a dotted key's depth (20,000 parts: 1.5 GB)
            raise _too_deep(shown)
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            msg = str(exc)
            line = None
            import re

            m = re.search(r"at line (\d+)", msg)
            if m:
                line = int(m.group(1))
            detail = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
            dup = _duplicate_key(text, line) if line and "overwrite" in msg.lower() else None
            if dup is not None:
                key, first = dup
                raise ConfigError(f"`{key}` is set twice, on line {first} and again on line {line}; TOML allows a "
                                  "key once per table.", where=f"{shown}:{line}",
                                  hint=f"Keep one of the two (line {first} or {line}) and delete the other.") from None
            tm = re.search(r"cannot declare \(([^)]*)\) twice", msg, re.I)
            if tm and line:
                name = ".".join(p.strip().strip("'\"") for p in tm.group(1).split(",") if p.strip())
                first_t = next((i + 1 for i, r in enumerate(text.splitlines()[: line - 1])
                                if re.match(rf"\s*\[\s*{re.escape(name)}\s*\]\s*(#.*)?$", r)), None)
                also = f" (first on line {first_t})" if first_t else ""
                raise ConfigError(f"the table [{name}] is declared twice{also}; TOML allows one [{name}] table.",
                                  where=f"{shown}:{line}", hint="Merge the two into one table.") from None
            raise ConfigError(
                f"this is not valid TOML: {detail[0].lower() + detail[1:] if detail else 'syntax error'}.",
                where=f"{shown}:{line}" if line else shown,
                hint="Fix the syntax (TOML strings need quotes; tables are [name]); `fly config validate` agrees.",
            ) from None
        except RecursionError:
            raise _too_deep(shown) from None
        lines = LineIndex(text)
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a table of keys.", where=shown)
    return normalise(raw, shown, lines)


def _duplicate_key(text: str, line: int) -> tuple[str, int] | None:
    """For tomllib's "Cannot overwrite a value" at ``line``: the key set there and the line that set it first
    (in the same table), or None when that cannot be told from the text."""
    rows = text.splitlines()
    if not 1 <= line <= len(rows):
        return None
    m = re.match(r"\s*([A-Za-z0-9_.\-\"' ]+?)\s*=", rows[line - 1])
    if not m:
        return None
    key = m.group(1).strip()
    table_of = []
    table = ""
    for r in rows:
        h = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?", r)
        if h and "=" not in r.split("]")[0]:
            table = h.group(1)
        table_of.append(table)
    for i in range(line - 1):
        km = re.match(r"\s*([A-Za-z0-9_.\-\"' ]+?)\s*=", rows[i])
        if km and km.group(1).strip() == key and table_of[i] == table_of[line - 1]:
            return key, i + 1
    return None


def normalise(raw: dict[str, Any], shown: str, lines: LineIndex | None) -> FlyApp:
    ctx = _Ctx(shown, lines)
    _unknown(ctx, raw, TOP_KEYS, "")

    app = raw.get("app")
    if app is not None and not isinstance(app, str):
        ctx.error(f"app must be a string, got {app!r}.", "app")
        app = None
    if isinstance(app, str):
        app = app.strip() or None
        if app and ("{{" in app or "<" in app or app in ("placeholder", "your-app-name", "my-app-name")):
            ctx.warn("app-placeholder", f"app = {app!r} looks like a template placeholder, not a real app name; "
                     "base URLs of this app cannot be matched until it is set.", "app")
    if app is None:
        ctx.warn("no-app-name", "fly.toml has no app name (it was given with -a or set by fly launch); base URLs "
                 "of the form APP.fly.dev cannot be searched for. Set `app` or pass --app.", "app", severity="warning")

    primary_region = raw.get("primary_region") if isinstance(raw.get("primary_region"), str) else None
    kill_signal = raw.get("kill_signal")
    if kill_signal is not None:
        if not isinstance(kill_signal, str) or kill_signal.upper() not in KILL_SIGNALS:
            ctx.error(f"kill_signal must be one of {', '.join(sorted(KILL_SIGNALS))}, got {kill_signal!r}.",
                      "kill_signal")
            kill_signal = None
        else:
            kill_signal = kill_signal.upper()

    experimental = raw.get("experimental") or {}
    if not isinstance(experimental, dict):
        ctx.error("[experimental] must be a table.", "experimental")
        experimental = {}
    _unknown(ctx, experimental, EXPERIMENTAL_KEYS, "experimental.", "experimental")

    kt_raw = raw.get("kill_timeout", experimental.get("kill_timeout"))
    kill_timeout = None
    if kt_raw is not None:
        kill_timeout = duration_s(kt_raw, int_unit=1.0)  # bare ints are seconds here
        if kill_timeout is None or kill_timeout < 0:
            ctx.error(f"kill_timeout must be seconds (5) or a duration (\"5s\"), got {kt_raw!r}.", "kill_timeout")
            kill_timeout = None
        elif kill_timeout > 300:
            ctx.warn("kill-timeout-max", f"kill_timeout {kill_timeout:g}s is above Fly's 300 s maximum.", "kill_timeout")

    swap = raw.get("swap_size_mb")
    swap_mb = _int(ctx, swap, "swap_size_mb", "swap_size_mb", minimum=0) if swap is not None else None

    for key, reason in NO_EQUIVALENT.items():
        if key in raw and reason:
            ctx.warn("no-equivalent", f"`{key}` does not translate: {reason}.", key, severity="info")
    for key in ("machine_config", "container"):
        if key in raw:
            ctx.warn("multi-container", f"`{key}` (multi-container machine config) is not migrated; "
                     "split the containers by hand.", key)

    build = _build(ctx, raw.get("build"))
    _deploy(ctx, raw.get("deploy"))
    env, env_where = _env(ctx, raw.get("env"))
    processes = _processes(ctx, raw.get("processes"))
    cmd = _cmdlike(ctx, experimental.get("cmd"), "experimental", "cmd")
    entrypoint = _cmdlike(ctx, experimental.get("entrypoint"), "experimental", "entrypoint")
    if experimental.get("exec") is not None:
        ctx.warn("experimental-exec", "[experimental] exec replaces the whole process and is carried into the "
                 "Dockerfile step as the command.", "experimental", "exec")
        if cmd is None:
            cmd = _cmdlike(ctx, experimental.get("exec"), "experimental", "exec")
    if "attached" in experimental:
        ctx.warn("attached-secrets", "[experimental.attached.secrets.export] exported URLs to other apps "
                 "(often .flycast ones); those apps must get the new base URL.", "experimental", "attached")
    if experimental.get("private_network") is not None or experimental.get("allowed_public_ports") is not None:
        ctx.warn("v1-keys", "V1-era [experimental] keys (private_network/allowed_public_ports) are ignored by "
                 "flyctl and by the migration.", "experimental", severity="info")

    vms = _vms(ctx, raw)
    mounts = _mounts(ctx, raw)
    services = _services(ctx, raw)
    files = _files(ctx, raw.get("files"))
    _checks(ctx, raw.get("checks"))

    deploy = raw.get("deploy") if isinstance(raw.get("deploy"), dict) else {}
    release = deploy.get("release_command") if isinstance(deploy.get("release_command"), str) else None

    if ctx.errors:
        n = len(ctx.errors)
        head = ctx.errors[0] if n == 1 else f"{n} problems in {shown}:\n  " + "\n  ".join(ctx.errors)
        raise ConfigError(head, hint="Fix the value(s) and run the command again; flyctl would reject them too.")

    return FlyApp(
        config_path=shown,
        app=app,
        primary_region=primary_region,
        kill_signal=kill_signal,
        kill_timeout_s=kill_timeout,
        swap_size_mb=swap_mb,
        build=build,
        env=tuple(env.items()),
        env_where=tuple(env_where.items()),
        processes=tuple(processes.items()),
        vms=tuple(vms),
        mounts=tuple(mounts),
        services=tuple(services),
        files=tuple(files),
        experimental_cmd=cmd,
        experimental_entrypoint=entrypoint,
        release_command=release,
        findings=tuple(ctx.findings),
    )


def _build(ctx: _Ctx, raw: Any) -> Build:
    if raw is None:
        return Build()
    if not isinstance(raw, dict):
        ctx.error("[build] must be a table.", "build")
        return Build()
    _unknown(ctx, raw, BUILD_KEYS, "build.", "build")
    image = raw.get("image") if isinstance(raw.get("image"), str) and raw.get("image").strip() else None
    dockerfile = raw.get("dockerfile") if isinstance(raw.get("dockerfile"), str) else None
    target = raw.get("build-target", raw.get("build_target"))
    args_raw = raw.get("args") or {}
    args: list[tuple[str, str]] = []
    if isinstance(args_raw, dict):
        args = [(str(k), go_str(v)) for k, v in args_raw.items()]
    for key in ("builder", "buildpacks", "builtin"):
        if key in raw:
            ctx.warn("buildpacks", f"[build] {key}: buildpack/builtin builds are not migrated; the targets need a "
                     "Dockerfile or an image.", "build", key)
    if "compose" in raw:
        ctx.warn("compose", "[build.compose] multi-container builds are not migrated.", "build", "compose")
    if image and dockerfile:
        ctx.warn("build-strategies", "both [build] image and dockerfile are set; flyctl uses the image.",
                 "build", "image")
    if image and image.startswith("registry.fly.io/"):
        ctx.warn("fly-registry", f"the image {image} is in Fly's private registry; re-push it to a registry the "
                 "target can pull from (`fly auth docker` then docker pull/tag/push) or build from source.",
                 "build", "image", step="dockerfile")
    if dockerfile and dockerfile.startswith(("http://", "https://")):
        ctx.warn("remote-dockerfile", f"[build] dockerfile is a URL ({dockerfile}); download it into the app "
                 "folder so it can be rewritten.", "build", "dockerfile", step="dockerfile")
    return Build(image=image.strip() if image else None, dockerfile=dockerfile, args=tuple(args),
                 build_target=target if isinstance(target, str) else None, where=ctx.where("build"))


def _deploy(ctx: _Ctx, raw: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        ctx.error("[deploy] must be a table.", "deploy")
        return
    _unknown(ctx, raw, DEPLOY_KEYS, "deploy.", "deploy")
    strat = raw.get("strategy")
    if strat is not None and not isinstance(strat, str):
        ctx.warn("deploy-strategy-table", "deploy.strategy must be a string (rolling, immediate, canary, "
                 "bluegreen); as a table flyctl cannot read this file at all and falls back to the app name only.",
                 "deploy", "strategy")
    if isinstance(raw.get("release_command"), str):
        ctx.warn("release-command", f"release_command `{raw['release_command']}` ran before each Fly deploy; "
                 "run it in your deploy pipeline (CI) before deploying to the target.", "deploy",
                 "release_command", step="dockerfile")


def _env(ctx: _Ctx, raw: Any) -> tuple[dict[str, str], dict[str, str]]:
    env: dict[str, str] = {}
    where: dict[str, str] = {}
    if raw is None:
        return env, where
    tables = _as_list_of_tables(raw)
    if tables is None:
        ctx.error("[env] must be a table of NAME = \"value\".", "env")
        return env, where
    for i, t in enumerate(tables):
        for k, v in t.items():
            if isinstance(v, (dict, list)) and not isinstance(v, bool):
                ctx.warn("env-nested", f"[env] {k} is a {'table' if isinstance(v, dict) else 'list'}; flyctl "
                         "turns it into Go text. Use a plain string.", "env", k)
            env[str(k)] = go_str(v)
            where[str(k)] = ctx.where("env", k) if len(tables) == 1 else ctx.where("env", i, k)
            if str(k).startswith("FLY_"):
                ctx.warn("env-fly-prefix", f"[env] {k}: names starting with FLY_ are reserved on Fly; it is "
                         "kept as-is on the target.", "env", k, severity="info")
    return env, where


def _processes(ctx: _Ctx, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, list):  # legacy [[processes]] name=/command=
        out = {}
        for i, p in enumerate(raw):
            if isinstance(p, dict) and isinstance(p.get("name"), str):
                out[p["name"]] = go_str(p.get("command", ""))
            else:
                ctx.error("[[processes]] entries need name = and command =.", "processes", i)
        return out
    if not isinstance(raw, dict):
        ctx.error("[processes] must be a table of group = \"command\".", "processes")
        return {}
    out = {}
    for k, v in raw.items():
        if isinstance(v, list):
            out[str(k)] = " ".join(str(x) for x in v)
        elif isinstance(v, str):
            out[str(k)] = v
        else:
            ctx.error(f"[processes] {k} must be a command string, got {v!r}.", "processes", k)
    if len(out) > 1:
        ctx.warn("multiple-processes", f"{len(out)} process groups ({', '.join(out)}): the migration deploys the "
                 "one that serves HTTP; each other group needs its own function/endpoint/service.", "processes",
                 step="dockerfile")
    return out


def _cmdlike(ctx: _Ctx, raw: Any, *path: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return (raw,)  # flyctl does NOT shell-split this
    if isinstance(raw, list) and all(isinstance(x, (str, int, float)) for x in raw):
        return tuple(str(x) for x in raw)
    ctx.error(f"{'.'.join(path)} must be a string or a list of strings.", *path)
    return None


def _collect(ctx: _Ctx, raw: dict[str, Any], names: tuple[str, ...]) -> list[tuple[str, int | None, dict[str, Any]]]:
    """Merge aliases ([vm]/[[vm]]/[compute]...) into one list of (key, index, table)."""
    out: list[tuple[str, int | None, dict[str, Any]]] = []
    for name in names:
        if name not in raw:
            continue
        value = raw[name]
        if isinstance(value, dict):
            out.append((name, None, value))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, dict):
                    out.append((name, i, v))
                else:
                    ctx.error(f"[[{name}]] entries must be tables.", name)
        else:
            ctx.error(f"`{name}` must be a table.", name)
    return out


def _p(name: str, idx: int | None, *rest: object) -> tuple[object, ...]:
    return (name, *( () if idx is None else (idx,)), *rest)


def _vms(ctx: _Ctx, raw: dict[str, Any]) -> list[Vm]:
    vms: list[Vm] = []
    for name, idx, t in _collect(ctx, raw, ("vm", "compute", "computes")):
        _unknown(ctx, {k: v for k, v in t.items() if k != "mounts"}, VM_KEYS, f"{name}.", *_p(name, idx))
        if "mounts" in t:
            ctx.warn("vm-mounts", "[[vm.mounts]] is not a Fly key (flyctl ignores it, so this app had no volume "
                     "from it); use top-level [[mounts]].", *_p(name, idx, "mounts"))
        where = ctx.where(*_p(name, idx))
        size = t.get("size")
        cpu_kind = cpus = memory_mb = None
        gpu_kind: str | None = None
        gpus = None
        gpu_origin = "fly.toml"
        gpu_where = None
        # 1. base from size
        if size is not None:
            if not isinstance(size, str):
                ctx.error(f"size must be a string like \"a100-40gb\" or \"performance-8x\", got {size!r}.",
                          *_p(name, idx, "size"))
                size = None
            else:
                s = size.strip().lower()
                if s in GPU_SIZE_PRESETS:
                    gpu_kind, cpus, memory_mb = GPU_SIZE_PRESETS[s]
                    cpu_kind, gpus = "performance", 1
                    gpu_origin, gpu_where = f"size preset {s}", ctx.where(*_p(name, idx, "size"))
                elif s in CPU_SIZE_PRESETS:
                    cpu_kind, cpus, memory_mb = CPU_SIZE_PRESETS[s]
                else:
                    kind, alias = normalise_gpu_kind(s)
                    if kind is not None:
                        ctx.warn("size-is-kind", f"size = {size!r} is a GPU kind, not a size; understood as the "
                                 f"preset for {kind}.", *_p(name, idx, "size"))
                        gpu_kind, gpus = kind, 1
                        cpu_kind, cpus, memory_mb = "performance", 8, 32768
                        gpu_where = ctx.where(*_p(name, idx, "size"))
                    else:
                        legal = ", ".join(list(GPU_SIZE_PRESETS) + ["shared-cpu-Nx", "performance-Nx"])
                        ctx.error(f"unknown VM size {size!r}. Fly sizes are {legal}.", *_p(name, idx, "size"))
        # explicit gpu_kind
        gk_raw = t.get("gpu_kind")
        if gk_raw is not None:
            if not isinstance(gk_raw, str):
                ctx.error(f"gpu_kind must be a string, got {gk_raw!r}.", *_p(name, idx, "gpu_kind"))
            elif gk_raw.strip().lower() == "none":
                gpu_kind = None
            else:
                kind, alias = normalise_gpu_kind(gk_raw)
                if kind is None:
                    ctx.error(f"gpu_kind {gk_raw!r} is not a Fly GPU kind. The legal kinds are "
                              f"{', '.join(FLY_GPU_KINDS)}.", *_p(name, idx, "gpu_kind"))
                else:
                    if alias:
                        ctx.warn("gpu-kind-alias", f"gpu_kind = {gk_raw!r} is a size name, not a GPU kind; "
                                 f"understood as {kind!r} (flyctl would reject it).", *_p(name, idx, "gpu_kind"))
                    gpu_kind = kind
                    gpu_origin, gpu_where = "fly.toml", ctx.where(*_p(name, idx, "gpu_kind"))
                    if size is None:
                        cpu_kind, cpus, memory_mb = CPU_SIZE_PRESETS[DEFAULT_GPU_VM_SIZE]
        # 2. memory overrides
        if "memory" in t:
            mb = ram_mb(t["memory"])
            if mb is None:
                ctx.error(f"memory must be MB (16384) or a size with units (\"16gb\"), got {t['memory']!r}.",
                          *_p(name, idx, "memory"))
            elif mb <= 0:
                ctx.error("memory = 0 is not a valid machine size; give MB or a size like \"16gb\".",
                          *_p(name, idx, "memory"))
            else:
                memory_mb = mb
        # 3. explicit fields
        if t.get("memory_mb") is not None:
            v = _int(ctx, t["memory_mb"], "memory_mb", *_p(name, idx, "memory_mb"), minimum=1)
            memory_mb = v or memory_mb
        if t.get("cpus") is not None:
            v = _int(ctx, t["cpus"], "cpus", *_p(name, idx, "cpus"), minimum=1)
            cpus = v or cpus
        if t.get("cpu_kind") is not None:
            if t["cpu_kind"] not in ("shared", "performance"):
                ctx.error(f"cpu_kind must be shared or performance, got {t['cpu_kind']!r}.", *_p(name, idx, "cpu_kind"))
            else:
                cpu_kind = t["cpu_kind"]
        if t.get("gpus") is not None:
            v = _int(ctx, t["gpus"], "gpus", *_p(name, idx, "gpus"), minimum=0)
            if v:
                gpus = v
                if gpu_kind is None:
                    ctx.error(f"gpus = {v} needs gpu_kind (one of {', '.join(FLY_GPU_KINDS)}) or a GPU size.",
                              *_p(name, idx, "gpus"))
            elif v == 0:
                gpu_kind = None
        gpu = GpuSpec(gpu_kind, gpus or 1, gpu_origin, gpu_where) if gpu_kind else None
        if t.get("kernel_args") is not None or t.get("persist_rootfs") is not None:
            ctx.warn("vm-no-equivalent", "kernel_args / persist_rootfs do not translate to any target.",
                     *_p(name, idx), severity="info")
        vms.append(Vm(size=size if isinstance(size, str) else None, cpu_kind=cpu_kind, cpus=cpus,
                      memory_mb=memory_mb, gpu=gpu, processes=_strlist(t.get("processes")), where=where))
    if len([v for v in vms if not v.processes]) > 1:
        ctx.warn("multiple-vm", "more than one [[vm]] section applies to the same processes; flyctl refuses "
                 "this. The first one is used.", "vm")
    return vms


def _mounts(ctx: _Ctx, raw: dict[str, Any]) -> list[Mount]:
    out: list[Mount] = []
    for name, idx, t in _collect(ctx, raw, ("mounts", "mount")):
        _unknown(ctx, t, MOUNT_KEYS, f"{name}.", *_p(name, idx))
        src, dst = t.get("source"), t.get("destination")
        if not isinstance(src, str) or not src.strip():
            ctx.error("a mount needs source = \"<volume name>\".", *_p(name, idx))
            continue
        if not isinstance(dst, str) or not dst.strip():
            ctx.error("a mount needs destination = \"/path\".", *_p(name, idx))
            continue
        d = dst.strip()
        if d.rstrip("/") == "":
            ctx.error("a volume cannot be mounted at / (flyctl refuses it); mount it at a folder like /data.",
                      *_p(name, idx, "destination"))
            continue
        if not d.startswith("/"):
            ctx.error(f"mount destination must be an absolute path, got {dst!r}.", *_p(name, idx, "destination"))
            continue
        size = None
        if t.get("initial_size") is not None:
            size = human_size_gb(t["initial_size"])
            if size is None or size <= 0:
                ctx.error(f"initial_size must be GB (50) or a size (\"50gb\"), got {t['initial_size']!r}.",
                          *_p(name, idx, "initial_size"))
                size = None
        out.append(Mount(src.strip(), d, size, _strlist(t.get("processes")), ctx.where(*_p(name, idx))))
    groups: dict[tuple[str, ...], int] = {}
    for m in out:
        groups[m.processes] = groups.get(m.processes, 0) + 1
    if any(n > 1 for n in groups.values()):
        ctx.warn("multiple-mounts", "more than one [[mounts]] for the same process group; flyctl refuses this. "
                 "All are migrated.", "mounts")
    return out


def _concurrency(ctx: _Ctx, raw: Any, *path: object) -> Concurrency | None:
    if raw is None:
        return None
    where = ctx.where(*path)
    if isinstance(raw, str):  # legacy "soft,hard"
        parts = [p.strip() for p in raw.split(",")]
        try:
            soft, hard = (int(parts[0]), int(parts[1])) if len(parts) == 2 else (None, int(parts[0]))
        except ValueError:
            ctx.error(f"concurrency = {raw!r}: the legacy form is \"soft,hard\" (two numbers).", *path)
            return None
        return Concurrency("requests", soft, hard, where)
    if not isinstance(raw, dict):
        ctx.error("concurrency must be a table with type, soft_limit, hard_limit.", *path)
        return None
    _unknown(ctx, raw, CONCURRENCY_KEYS, "concurrency.", *path)
    ctype = raw.get("type", "connections")
    if ctype not in ("connections", "requests"):
        ctx.error(f"concurrency type must be connections or requests, got {ctype!r}.", *path, "type")
        ctype = "connections"
    soft = _int(ctx, raw.get("soft_limit"), "soft_limit", *path, "soft_limit", minimum=0)
    hard = _int(ctx, raw.get("hard_limit"), "hard_limit", *path, "hard_limit", minimum=0)
    if soft is None and "soft_limit" not in raw:
        soft = 20  # flyctl default
    if soft and hard and soft > hard:
        ctx.warn("soft-above-hard", f"soft_limit {soft} is above hard_limit {hard}.", *path, "soft_limit")
    return Concurrency(ctype, soft, hard, where)


def _auto_stop(ctx: _Ctx, raw: Any, *path: object) -> tuple[str, bool]:
    if raw is None:
        return "off", False
    if isinstance(raw, bool):
        return ("stop" if raw else "off"), True
    if isinstance(raw, str) and raw.strip().lower() in AUTO_STOP_VALUES:
        return raw.strip().lower(), True
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return ("stop" if raw.strip().lower() == "true" else "off"), True
    ctx.error(f"auto_stop_machines must be true, false, \"off\", \"stop\" or \"suspend\", got {raw!r}.", *path)
    return "off", False


def _checks_list(ctx: _Ctx, raw: Any, kind: str, *path: object) -> list[Check]:
    out = []
    tables = _as_list_of_tables(raw) if raw is not None else []
    if tables is None:
        ctx.error("checks must be tables.", *path)
        return out
    for i, c in enumerate(tables):
        p = (*path, i) if isinstance(raw, list) else path
        _unknown(ctx, c, CHECK_KEYS, "checks.", *p)
        vals = {}
        for key in ("interval", "timeout", "grace_period"):
            if c.get(key) is not None:
                v = duration_s(c[key], int_unit=0.001)  # bare ints are milliseconds
                if v is None:
                    ctx.error(f"{key} must be a duration like \"10s\" (a bare number means milliseconds), "
                              f"got {c[key]!r}.", *p, key)
                vals[key] = v
        port = _int(ctx, c.get("port"), "port", *p, "port", minimum=1) if c.get("port") is not None else None
        out.append(Check(c.get("type", kind) if isinstance(c.get("type", kind), str) else kind,
                         c.get("path") if isinstance(c.get("path"), str) else None, port,
                         vals.get("interval"), vals.get("timeout"), vals.get("grace_period"), ctx.where(*p)))
    return out


def _services(ctx: _Ctx, raw: dict[str, Any]) -> list[Service]:
    out: list[Service] = []
    hs = raw.get("http_service")
    if hs is not None:
        if not isinstance(hs, dict):
            ctx.error("[http_service] must be a table.", "http_service")
        else:
            _unknown(ctx, hs, HTTP_SERVICE_KEYS, "http_service.", "http_service")
            port = _int(ctx, hs.get("internal_port", 8080), "internal_port", "http_service", "internal_port",
                        minimum=1)
            if port is not None and port > 65535:
                ctx.error(f"internal_port {port} is not a TCP port (1-65535).", "http_service", "internal_port")
            auto_stop, set_ = _auto_stop(ctx, hs.get("auto_stop_machines"), "http_service", "auto_stop_machines")
            mmr = _int(ctx, hs.get("min_machines_running", 0), "min_machines_running", "http_service",
                       "min_machines_running", minimum=0) or 0
            force = bool(hs.get("force_https", False))
            out.append(Service(
                origin="http_service", internal_port=port, protocol="tcp",
                ports=(Port(80, ("http",), force), Port(443, ("http", "tls"))),
                auto_stop=auto_stop, auto_stop_set=set_,
                auto_start=bool(hs.get("auto_start_machines", True)), min_machines_running=mmr,
                concurrency=_concurrency(ctx, hs.get("concurrency"), "http_service", "concurrency"),
                checks=tuple(_checks_list(ctx, hs.get("checks"), "http", "http_service", "checks")),
                processes=_strlist(hs.get("processes")), where=ctx.where("http_service"),
            ))
    for name, idx, s in _collect(ctx, raw, ("services",)):
        base = _p(name, idx)
        _unknown(ctx, s, SERVICE_KEYS, "services.", *base)
        port = _int(ctx, s.get("internal_port"), "internal_port", *base, "internal_port", minimum=0)
        if port is not None and port > 65535:
            ctx.error(f"internal_port {port} is not a TCP port (1-65535).", *base, "internal_port")
        if not port:
            ctx.warn("service-no-port", "a [[services]] entry without internal_port is ignored.", *base)
            continue
        proto = s.get("protocol", "tcp") or "tcp"
        ports: list[Port] = []
        plist = s.get("ports")
        ptables = _as_list_of_tables(plist) if plist is not None else []
        for j, pt in enumerate(ptables or []):
            _unknown(ctx, pt, PORT_KEYS, "services.ports.", *base, "ports", j)
            pnum = _int(ctx, pt.get("port"), "port", *base, "ports", j, "port", minimum=0) if pt.get("port") is not None else None
            ports.append(Port(pnum, _strlist(pt.get("handlers")), bool(pt.get("force_https", False))))
        if proto == "udp":
            ctx.warn("udp-service", "UDP services do not translate to any target (HTTP only).", *base, "protocol")
        auto_stop, set_ = _auto_stop(ctx, s.get("auto_stop_machines"), *base, "auto_stop_machines")
        mmr = _int(ctx, s.get("min_machines_running", 0), "min_machines_running", *base, "min_machines_running",
                   minimum=0) or 0
        checks = _checks_list(ctx, s.get("http_checks"), "http", *base, "http_checks") + \
            _checks_list(ctx, s.get("tcp_checks"), "tcp", *base, "tcp_checks")
        out.append(Service(
            origin="services", internal_port=port, protocol=str(proto), ports=tuple(ports),
            auto_stop=auto_stop, auto_stop_set=set_, auto_start=bool(s.get("auto_start_machines", True)),
            min_machines_running=mmr, concurrency=_concurrency(ctx, s.get("concurrency"), *base, "concurrency"),
            checks=tuple(checks), processes=_strlist(s.get("processes")), where=ctx.where(*base),
        ))
    return out


def _files(ctx: _Ctx, raw: Any) -> list[FileInjection]:
    if raw is None:
        return []
    tables = _as_list_of_tables(raw)
    if tables is None:
        ctx.error("[[files]] entries must be tables.", "files")
        return []
    out = []
    for i, f in enumerate(tables):
        p = ("files", i) if isinstance(raw, list) else ("files",)
        _unknown(ctx, f, FILES_KEYS, "files.", *p)
        gp = f.get("guest_path")
        if not isinstance(gp, str) or not gp.startswith("/"):
            ctx.error("[[files]] needs guest_path = \"/absolute/path\".", *p)
            continue
        sources = [k for k in ("local_path", "raw_value", "secret_name") if f.get(k) is not None]
        if len(sources) != 1:
            ctx.error("[[files]] needs exactly one of local_path, raw_value or secret_name.", *p)
            continue
        out.append(FileInjection(gp, f.get("local_path") if isinstance(f.get("local_path"), str) else None,
                                 f.get("raw_value") is not None,
                                 f.get("secret_name") if isinstance(f.get("secret_name"), str) else None,
                                 _strlist(f.get("processes")), ctx.where(*p)))
    return out


def _checks(ctx: _Ctx, raw: Any) -> None:
    if raw is None:
        return
    if isinstance(raw, list):
        for i, c in enumerate(raw):
            if not isinstance(c, dict) or "name" not in c:
                ctx.error("[[checks]] entries need a name.", "checks", i)
        return
    if not isinstance(raw, dict):
        ctx.error("[checks] must be a table of named checks.", "checks")
        return
    for name, c in raw.items():
        if not isinstance(c, dict):
            ctx.error(f"[checks.{name}] must be a table.", "checks", name)
            continue
        _unknown(ctx, c, CHECK_KEYS, f"checks.{name}.", "checks", name)
        if c.get("type") not in ("http", "tcp"):
            ctx.error(f"[checks.{name}] type must be http or tcp.", "checks", name)
