"""Read a Fly secrets export into :class:`flymigrate.model.SecretsExport`.

Formats, detected from the content (``fmt`` forces one):

* ``fly-json``: all three ``fly secrets list --json`` shapes (``Name/Digest/CreatedAt``;
  ``name/digest/updated_at/created_at``; ``name/digest/status``). Names only: values must come from elsewhere.
* ``fly-table``: the plain ``fly secrets list`` table (NAME DIGEST ...). Names only.
* ``env-dump``: ``fly ssh console -C env`` / ``printenv`` output, or NUL-separated ``/proc/1/environ``. Values are
  raw (no quotes processed). Runtime variables (``FLY_*``, ``PRIMARY_REGION``, ``HOSTNAME``, ``PATH``,
  ``HOME``...) and what ``[env]`` or the image already sets are dropped.
* ``dotenv``: dotenv files and the ``fly secrets import`` format: ``export`` prefix, single/double quotes,
  ``\"\"\"`` multi-line values, inline ``#`` comments, CRLF.

Error messages name the file and line but never echo a line's content: it may hold a value.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError
from ..model import Finding, Secret, SecretsExport, SecretValue
from .text import decode_text

MAX_SECRETS_BYTES = 16 * 1024 * 1024
MAX_SECRET_LINES = 50_000
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
RUNTIME_VARS = {
    "PRIMARY_REGION", "HOSTNAME", "PATH", "HOME", "PWD", "OLDPWD", "SHLVL", "TERM", "USER", "LOGNAME", "SHELL",
    "_", "LANG", "LANGUAGE", "HOSTTYPE", "MAIL", "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "RELEASE_COMMAND",
    "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "LD_LIBRARY_PATH", "TZ",
}
RUNTIME_PREFIXES = ("FLY_", "LC_")


def _is_runtime(name: str) -> bool:
    return name in RUNTIME_VARS or name.startswith(RUNTIME_PREFIXES)


def load_secrets(
    path: Path,
    *,
    env_names: Iterable[str] = (),
    image_env_names: Iterable[str] = (),
    fmt: str | None = None,
    display: str | None = None,
) -> SecretsExport:
    shown = display or str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"the secrets file {shown} does not exist.",
                          hint="Pass the export you made (fly secrets list --json, an env dump or a .env file).") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the secrets file {shown}: {exc.strerror}.") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"the secrets file {shown} is not a regular file.")
    if st.st_size > MAX_SECRETS_BYTES:
        raise ConfigError(f"the secrets file {shown} is {st.st_size // (1024 * 1024)} MiB; a secrets export is a "
                          "few KB, so this is not one.", hint="Check the path given with --secrets.")
    try:
        data = path.read_bytes()
    except PermissionError:
        raise ConfigError(f"cannot read the secrets file {shown}: permission denied.") from None
    export = parse_secrets(data, shown, env_names=env_names, image_env_names=image_env_names, fmt=fmt)
    if st.st_mode & 0o077 and os.name == "posix" and any(s.has_value for s in export.secrets):
        warn = Finding("warning", "secrets-file-permissions",
                       f"{shown} holds secret values and is readable by other users (mode "
                       f"{stat.S_IMODE(st.st_mode):o}); run `chmod 600 {shown}`.", shown, "secrets")
        from dataclasses import replace

        export = replace(export, findings=(warn, *export.findings))
    return export


def parse_secrets(
    data: bytes,
    shown: str,
    *,
    env_names: Iterable[str] = (),
    image_env_names: Iterable[str] = (),
    fmt: str | None = None,
    findings: list[Finding] | None = None,
) -> SecretsExport:
    findings = list(findings or [])
    env_set, image_set = set(env_names), set(image_env_names)
    _check_lines(data.count(b"\n"), shown)  # before anything splits the text into lines
    if fmt is None:
        fmt = detect_format(data)
    if fmt == "environ":
        text = data.decode("utf-8", errors="strict") if _utf8(data) else None
        if text is None:
            raise ConfigError(f"{shown} looks like /proc/*/environ but is not UTF-8.")
        _check_lines(text.count("\x00"), shown)
        pairs = [(seg.split("=", 1)[0], seg.split("=", 1)[1], i + 1)
                 for i, seg in enumerate(text.split("\x00")) if "=" in seg]
        return _env_dump(pairs, shown, env_set, image_set, findings, "env-dump")
    text = decode_text(data, shown)
    _check_lines(text.count("\n"), shown)
    if fmt == "fly-json":
        return _fly_json(text, shown, findings)
    if fmt == "fly-table":
        return _fly_table(text, shown, findings)
    if fmt == "env-dump":
        return _env_dump(_raw_pairs(text, shown, findings), shown, env_set, image_set, findings, "env-dump")
    if fmt == "dotenv":
        return _dotenv(text, shown, env_set, findings)
    raise ConfigError(f"unknown secrets format {fmt!r}; use fly-json, fly-table, env-dump or dotenv.")


def _check_lines(n: int, shown: str) -> None:
    # memory is ~1.4 KB per entry through plan (a 16 MB file of K=v lines took 2.3 GB): refuse absurd exports early
    if n > MAX_SECRET_LINES:
        raise ConfigError(f"{shown} has {n} lines; a secrets export has a few hundred at most, so this is not one.",
                          hint="Check the path given with --secrets.")


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def detect_format(data: bytes) -> str:
    head = data.lstrip(b"\xef\xbb\xbf").lstrip()
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        segs = [s for s in data.split(b"\x00") if s]
        if segs and all(re.match(rb"^[A-Za-z_][A-Za-z0-9_]*=", s) for s in segs[:50]):
            return "environ"
        return "dotenv"  # decode_text reports it as binary
    if head.startswith((b"[", b"{")):
        return "fly-json"
    try:
        text = decode_text(data, "secrets")
    except ConfigError:
        return "dotenv"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and re.match(r"^\s*NAME\s+(\|\s*)?DIGEST\b", lines[0], re.I):
        return "fly-table"
    names = {ln.split("=", 1)[0] for ln in lines if "=" in ln}
    markers = {"PATH", "HOME", "HOSTNAME", "FLY_APP_NAME", "FLY_MACHINE_ID", "FLY_REGION", "PRIMARY_REGION"}
    if len(names & markers) >= 2 or any(n.startswith("FLY_") for n in names) and "PATH" in names:
        return "env-dump"
    return "dotenv"


def _fly_json(text: str, shown: str, findings: list[Finding]) -> SecretsExport:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{shown}:{exc.lineno}: not valid JSON ({exc.msg}).",
                          hint="Export it again with `fly secrets list --json > secrets.json`.") from None
    except RecursionError:
        raise ConfigError(f"{shown}: the JSON nests too deeply to be a secrets export.") from None
    if isinstance(data, dict):  # tolerate {"secrets": [...]} wrappers
        for key in ("secrets", "Secrets", "data"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list):
        raise ConfigError(f"{shown}: expected the list that `fly secrets list --json` prints.")
    _check_lines(len(data), shown)
    secrets: list[Secret] = []
    seen = set()
    for i, item in enumerate(data):
        if isinstance(item, str):
            name = item
            status = None
        elif isinstance(item, dict):
            name = item.get("name", item.get("Name"))
            status = item.get("status")
        else:
            raise ConfigError(f"{shown}: entry {i + 1} is not a secret object.")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ConfigError(f"{shown}: entry {i + 1} has no valid secret name.")
        if name in seen:
            continue
        seen.add(name)
        value = item.get("value") if isinstance(item, dict) else None
        if isinstance(status, str) and status.lower() in ("staged", "partial"):
            findings.append(Finding("info", "secret-staged", f"secret {name} was {status.lower()} on Fly (not "
                                    "deployed everywhere); make sure the value you supply is the current one.",
                                    shown, "secrets"))
        secrets.append(Secret(name, SecretValue(value) if isinstance(value, str) else None, f"{shown}#{i + 1}"))
    return SecretsExport(shown, "fly-json", tuple(secrets), (), tuple(findings))


def _fly_table(text: str, shown: str, findings: list[Finding]) -> SecretsExport:
    secrets = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        cells = [c for c in re.split(r"\s*\|\s*|\s{2,}|\t", line.strip()) if c]
        if not cells or lineno == 1 or set(line.strip()) <= set("-+| "):
            continue
        name = cells[0].lstrip("*! ").strip()
        if NAME_RE.match(name):
            secrets.append(Secret(name, None, f"{shown}:{lineno}"))
    return SecretsExport(shown, "fly-table", tuple(secrets), (), tuple(findings))


def _raw_pairs(text: str, shown: str, findings: list[Finding]) -> list[tuple[str, str, int]]:
    pairs: list[tuple[str, str, int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if m:
            pairs.append((m.group(1), m.group(2), lineno))
        elif pairs and line != "":
            name, value, ln = pairs[-1]
            pairs[-1] = (name, value + "\n" + line, ln)
            findings.append(Finding("warning", "env-dump-multiline",
                                    f"{name} continues on line {lineno}: env dumps cannot mark where a multi-line "
                                    "value ends; check it, or export it with `printenv NAME`.",
                                    f"{shown}:{ln}", "secrets"))
    return pairs


def _env_dump(pairs: list[tuple[str, str, int]], shown: str, env_set: set[str], image_set: set[str],
              findings: list[Finding], fmt: str) -> SecretsExport:
    secrets: dict[str, Secret] = {}
    dropped: list[str] = []
    for name, value, lineno in pairs:
        if _is_runtime(name) or name in env_set or name in image_set:
            dropped.append(name)
            continue
        secrets[name] = Secret(name, SecretValue(value), f"{shown}:{lineno}")
    if dropped:
        findings.append(Finding("info", "env-dump-dropped",
                                f"{len(dropped)} variables from the env dump are not secrets (Fly runtime, "
                                f"[env] or image ENV) and were left out: {', '.join(sorted(set(dropped)))}.",
                                shown, "secrets"))
    return SecretsExport(shown, fmt, tuple(secrets.values()), tuple(sorted(set(dropped))), tuple(findings))


def _dotenv(text: str, shown: str, env_set: set[str], findings: list[Finding]) -> SecretsExport:
    secrets: dict[str, Secret] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].rstrip("\r")
        i += 1
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if "=" not in line:
            raise ConfigError(f"{shown}:{lineno}: this line is not NAME=VALUE (its content is not shown, it may "
                              "be a value).", hint="Fix or remove the line; comments start with #.")
        key, value = line.split("=", 1)
        key = key.strip()
        if key.startswith("export ") or key.startswith("export\t"):
            key = key[7:].strip()
        if not NAME_RE.match(key):
            # never echo it: a line like `c2VjcmV0+dmFsdWU=` (a wrapped base64 value) would print part of a secret
            raise ConfigError(f"{shown}:{lineno}: the text before `=` is not a valid variable name (it is not shown: "
                              "it may be part of a value).",
                              hint="Names use letters, digits and _ and do not start with a digit.")
        value = value.lstrip(" \t")
        if value.startswith('"""'):
            rest = value[3:]
            close = rest.find('"""')
            if close >= 0:
                val = rest[:close]
            else:
                parts = [rest]
                while True:
                    if i >= len(lines):
                        raise ConfigError(f"{shown}:{lineno}: the \"\"\" multi-line value of {key} is never closed.",
                                          hint="End it with a line that ends in \"\"\".")
                    nxt = lines[i].rstrip("\r")
                    i += 1
                    if nxt.rstrip().endswith('"""'):
                        parts.append(nxt.rstrip()[:-3])
                        break
                    parts.append(nxt)
                val = "\n".join(parts)
        elif value[:1] in ("'", '"'):
            q = value[0]
            end = value.find(q, 1)
            if end < 0:
                # dotenv also allows a quoted value spanning lines
                parts = [value[1:]]
                while True:
                    if i >= len(lines):
                        raise ConfigError(f"{shown}:{lineno}: the quoted value of {key} is never closed.",
                                          hint=f"Add the closing {q}.")
                    nxt = lines[i].rstrip("\r")
                    i += 1
                    pos = nxt.find(q)
                    if pos >= 0:
                        parts.append(nxt[:pos])
                        tail = nxt[pos + 1:].strip()
                        break
                    parts.append(nxt)
                val = "\n".join(parts)
            else:
                val = value[1:end]
                tail = value[end + 1:].strip()
            if tail and not tail.startswith("#"):
                raise ConfigError(f"{shown}:{lineno}: unexpected text after the quoted value of {key}.",
                                  hint="Put comments after a space and #, or quote the whole value.")
            if q == '"' and "\\n" in val:
                findings.append(Finding("info", "secret-escape", f"{key}: `\\n` in a double-quoted value is kept "
                                        "as two characters, as `fly secrets import` did.", f"{shown}:{lineno}",
                                        "secrets"))
        else:
            m = re.search(r"\s#", value)
            val = (value[: m.start()] if m else value).rstrip()
            if "#" in val:
                findings.append(Finding("warning", "secret-hash", f"{key}: the value contains `#` with no space "
                                        "before it; it is kept whole (fly secrets import would have cut it there). "
                                        "Quote the value to be sure.", f"{shown}:{lineno}", "secrets"))
        if key in secrets:
            findings.append(Finding("warning", "secret-duplicate", f"{key} is set twice; the last one wins.",
                                    f"{shown}:{lineno}", "secrets"))
        if key in env_set:
            findings.append(Finding("info", "secret-shadows-env", f"{key} is also in [env]; on Fly the secret won.",
                                    f"{shown}:{lineno}", "secrets"))
        secrets[key] = Secret(key, SecretValue(val), f"{shown}:{lineno}")
    if not secrets:
        findings.append(Finding("warning", "secrets-empty", f"{shown} holds no NAME=VALUE pairs.", shown, "secrets"))
    return SecretsExport(shown, "dotenv", tuple(secrets.values()), (), tuple(findings))


def merge_exports(exports: list[SecretsExport]) -> SecretsExport | None:
    """Combine several exports: names from `fly secrets list`, values from an env dump or .env.

    When a names-only export is present, it defines which names are secrets; values found elsewhere for
    other names are left out (they were not Fly secrets).
    """
    if not exports:
        return None
    if len(exports) == 1:
        return exports[0]
    name_lists = [e for e in exports if e.format in ("fly-json", "fly-table")]
    value_sources = [e for e in exports if e not in name_lists]
    values: dict[str, Secret] = {}
    for e in value_sources:
        for s in e.secrets:
            values[s.name] = s
    findings = [f for e in exports for f in e.findings]
    if name_lists:
        names: list[str] = []
        wheres: dict[str, str | None] = {}
        for e in name_lists:
            for s in e.secrets:
                if s.name not in wheres:
                    names.append(s.name)
                    wheres[s.name] = s.where
        out = [values.get(n) or Secret(n, None, wheres[n]) for n in names]
        extra = sorted(set(values) - set(names))
        if extra:
            findings.append(Finding("info", "not-a-fly-secret", f"{len(extra)} names with values are not in the Fly "
                                    f"secrets list and were left out: {', '.join(extra)}.", None, "secrets"))
    else:
        out = list(values.values())
    return SecretsExport(", ".join(str(e.path) for e in exports), "+".join(e.format for e in exports),
                         tuple(out), tuple(d for e in exports for d in e.dropped), tuple(findings))
