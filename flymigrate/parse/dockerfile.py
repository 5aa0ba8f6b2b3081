"""A small Dockerfile reader: instructions with their line spans (enough to plan and rewrite)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from ..errors import ConfigError
from ..model import Dockerfile, DockerInstruction
from .text import decode_text

MAX_DOCKERFILE_BYTES = 2 * 1024 * 1024
_INSTR_RE = re.compile(r"^\s*([A-Za-z]+)(?:\s+(.*))?$")


def parse_dockerfile_text(text: str, shown: str) -> Dockerfile:
    instructions: list[DockerInstruction] = []
    lines = text.split("\n")
    escape = "\\"
    m = re.match(r"^\s*#\s*escape\s*=\s*(\S)", text)
    if m:
        escape = m.group(1)
    i = 0
    heredoc: str | None = None
    while i < len(lines):
        start = i
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [line]
        # continuation lines (comments inside continuations are skipped, as BuildKit does)
        while parts[-1].rstrip().endswith(escape) and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#"):
                parts.append(escape)
                continue
            parts.append(nxt)
        joined = " ".join(p.rstrip()[:-1] if p.rstrip().endswith(escape) else p for p in parts)
        # heredocs: RUN <<EOF ... EOF
        hm = re.search(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?", joined)
        if hm:
            heredoc = hm.group(1)
            body = []
            while i < len(lines):
                nxt = lines[i]
                i += 1
                if nxt.strip() == heredoc:
                    break
                body.append(nxt)
            joined = joined + "\n" + "\n".join(body)
        mm = _INSTR_RE.match(joined.split("\n", 1)[0])
        if not mm:
            continue
        keyword = mm.group(1).upper()
        args = joined.split(None, 1)[1] if len(joined.split(None, 1)) > 1 else ""
        instructions.append(DockerInstruction(start + 1, i, keyword, args.strip()))
    return Dockerfile(shown, text, tuple(instructions))


def load_dockerfile(path: Path, shown: str) -> Dockerfile:
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):  # /dev/zero or a FIFO would be read forever
            raise ConfigError(f"{shown} is not a regular file (a device, pipe or socket).",
                              hint="Check [build] dockerfile in fly.toml.")
        if st.st_size > MAX_DOCKERFILE_BYTES:
            raise ConfigError(f"{shown} is larger than {MAX_DOCKERFILE_BYTES // (1024 * 1024)} MiB; that is not a "
                              "Dockerfile.", hint="Check [build] dockerfile in fly.toml.")
        with open(path, "rb") as fh:
            data = fh.read(MAX_DOCKERFILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{shown} does not exist.", hint="Check [build] dockerfile in fly.toml.") from None
    except IsADirectoryError:
        raise ConfigError(f"{shown} is a directory, not a Dockerfile.") from None
    except PermissionError:
        raise ConfigError(f"cannot read {shown}: permission denied.") from None
    return parse_dockerfile_text(decode_text(data, shown), shown)


def env_names(df: Dockerfile) -> list[str]:
    """Names set with ENV (both `ENV A=1 B=2` and legacy `ENV A 1`)."""
    out = []
    for ins in df.instructions:
        if ins.keyword != "ENV":
            continue
        if "=" in ins.args.split(None, 1)[0]:
            out += re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", ins.args)
        else:
            out.append(ins.args.split(None, 1)[0])
    return out
