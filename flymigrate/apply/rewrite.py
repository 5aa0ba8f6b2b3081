"""Pure text rewrites for the Dockerfile step: the image and the app's own scripts, minus what only Fly needed.

Every function here takes text and returns text (plus human notes); no I/O. The executor always rewrites from the
*original* file (the backup), so running the rewrite twice never stacks changes.

What changes (research/fly.md sections 1.13, 2, 7):
- driver shims (``ldconfig``, ``nvidia-smi``, removing the CUDA stubs) are removed: the targets' container
  runtimes inject the NVIDIA driver themselves;
- ``/opt/nvidia/entrypoint.d/*fly*`` hooks are dropped;
- ``$FLY_APP_NAME`` / ``$FLY_REGION`` / ``$FLY_MACHINE_ID`` ... become explicit values;
- IPv6-only binds (``[::]``, ``::``, ``fly-local-6pn``, ``inet6_tcp``) become ``0.0.0.0`` / IPv4;
- weight downloads baked into image layers are dropped when the weights step puts them on the mounted volume;
- ``[[files]]`` with a ``local_path`` become ``COPY`` lines; ``[processes]`` / ``[experimental] cmd|entrypoint``
  become an explicit ``CMD`` / ``ENTRYPOINT``;
- a final stage on a CPU-only base (``python:3.11-slim``...) gets a CUDA runtime base;
- RunPod: the app's weights path is linked to ``/runpod-volume/<app>`` (where RunPod mounts network volumes).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from ..dockerplan import BAKED_RE, FLY_ENTRYPOINT_D_RE, needs_cuda_base
from ..model import FlyApp
from ..parse.dockerfile import parse_dockerfile_text

CUDA_BASE = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"
MARK = "# flymigrate:"

_SHIM_SEG_RE = re.compile(r"^\s*(?:(?:/usr/bin/|/sbin/|/usr/sbin/)?(?:ldconfig|nvidia-smi)(?:\s[^;&|]*)?"
                          r"|rm\s+-r?f?r?\s+/usr/local/cuda/lib64/stubs\S*)\s*$")
_SPLIT_RE = re.compile(r"\s*(&&|;)\s*")

# what is left of `ollama serve & sleep 5 && ollama pull X` once the pull is gone: scaffolding, dropped too
_HELPER_SEG_RE = re.compile(r"^\s*(?:\S*ollama serve\b[^&]*&\s*)?(?:sleep\s+\d+\s*)?$")
_FLY_VAR_RE = re.compile(r"\$\{(FLY_[A-Z_]+)(?::?-[^}]*)?\}|\$(FLY_[A-Z_]+)\b")


@dataclass
class RewriteContext:
    """What the rewrite needs to know beyond the text itself."""

    app: FlyApp
    target: str
    app_slug: str
    drop_baked: bool  # the weights step fills the volume, so downloads baked into layers go
    mount_path: str | None = None
    runpod_mount: str | None = None  # /runpod-volume/<slug>
    notes: list[str] = field(default_factory=list)


def fly_value(name: str, ctx: RewriteContext) -> str | None:
    app = ctx.app
    table = {
        "FLY_APP_NAME": app.app or ctx.app_slug,
        "FLY_REGION": app.primary_region,
        "PRIMARY_REGION": app.primary_region,
        "FLY_MACHINE_ID": "${HOSTNAME}",
        "FLY_ALLOC_ID": "${HOSTNAME}",
        "FLY_PRIVATE_IP": "0.0.0.0",
        "FLY_PROCESS_GROUP": "app",
        "FLY_VM_MEMORY_MB": str(app.memory_mb) if app.memory_mb else None,
    }
    return table.get(name)


def fix_fly_vars(text: str, ctx: RewriteContext, where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        val = fly_value(name, ctx)
        if val is None:
            ctx.notes.append(f"{where}: ${name} has no equivalent off Fly; set it yourself or remove its use")
            return m.group(0)
        return val

    return _FLY_VAR_RE.sub(sub, text)


_IPV6_SUBS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\[0000:0000:0000:0000:0000:0000:0000:0000\]", re.IGNORECASE), "0.0.0.0"),
    (re.compile(r"\[::\]"), "0.0.0.0"),
    (re.compile(r"fly-local-6pn"), "0.0.0.0"),
    (re.compile(r"\s*-proto_dist\s+inet6_tcp"), ""),
    (re.compile(r"inet6_tcp"), "inet_tcp"),
    (re.compile(r"((?:--host|--bind|-b)[ =]|HOST=|_IP=|_HOST=|_ADDR=)([\"']?)::(?![0-9a-fA-F:])"), r"\g<1>\g<2>0.0.0.0"),
    (re.compile(r"(?<=[=\s])([\"'])::\1"), r"\g<1>0.0.0.0\g<1>"),
)


def fix_ipv6(text: str) -> str:
    for rx, rep in _IPV6_SUBS:
        text = rx.sub(rep, text)
    return text


def fix_env_value(value: str) -> str:
    """An [env] value, as the target config should carry it."""
    if value.strip() in ("::", "[::]", "fly-local-6pn"):
        return "0.0.0.0"
    return fix_ipv6(value)


def _drop_segments(body: str, ctx: RewriteContext) -> tuple[str | None, list[str]]:
    """Remove shim / Fly-hook / baked-download segments from a shell command line.

    Returns (new body or None when nothing is left, reasons)."""
    parts = _SPLIT_RE.split(body)
    segs = parts[0::2]
    seps = parts[1::2]
    keep: list[str] = []
    keep_seps: list[str] = []
    reasons: list[str] = []
    for i, seg in enumerate(segs):
        why = None
        if _SHIM_SEG_RE.match(seg):
            why = "Fly GPU driver shim"
        elif FLY_ENTRYPOINT_D_RE.search(seg):
            why = "Fly-only /opt/nvidia/entrypoint.d hook"
        elif ctx.drop_baked and BAKED_RE.search(seg + " "):
            why = "weights baked into the image (they are on the mounted volume now)"
        if why:
            reasons.append(why)
            continue
        if keep:
            keep_seps.append(seps[i - 1] if i - 1 < len(seps) else "&&")
        keep.append(seg)
    if not reasons:
        return body, []
    if not keep or all(not s.strip() or _HELPER_SEG_RE.match(s) for s in keep):
        return None, reasons
    out = keep[0]
    for sep, seg in zip(keep_seps, keep[1:]):
        out += (" && " if sep == "&&" else "; ") + seg
    try:
        shlex.split(out)
    except ValueError:  # the split cut through a quoted string: leave the line alone, say so
        return body, ["!unsafe"]
    return out, reasons


def _json_cmd(argv: list[str] | tuple[str, ...]) -> str:
    return json.dumps(list(argv))


def served_process_command(app: FlyApp) -> tuple[str, str] | None:
    """(group, command) of the process group the HTTP service routes to."""
    if not app.processes:
        return None
    procs = dict(app.processes)
    svc = app.primary_service
    if svc and svc.processes:
        for g in svc.processes:
            if g in procs:
                return g, procs[g]
    if "app" in procs:
        return "app", procs["app"]
    return app.processes[0]


def explicit_command_lines(app: FlyApp) -> list[str]:
    """ENTRYPOINT / CMD lines that make fly.toml's deploy-time overrides explicit."""
    lines: list[str] = []
    if app.experimental_entrypoint:
        lines.append(f"{MARK} [experimental] entrypoint from fly.toml (Fly set it at deploy time)")
        lines.append(f"ENTRYPOINT {_json_cmd(app.experimental_entrypoint)}")
    served = served_process_command(app)
    if served:
        group, cmd = served
        try:
            argv = shlex.split(cmd)
        except ValueError:
            argv = ["sh", "-c", cmd]
        lines.append(f"{MARK} [processes] {group} from fly.toml (the HTTP service's process group)")
        lines.append(f"CMD {_json_cmd(argv)}")
    elif app.experimental_cmd:
        lines.append(f"{MARK} [experimental] cmd from fly.toml (Fly set it at deploy time)")
        lines.append(f"CMD {_json_cmd(app.experimental_cmd)}")
    return lines


def files_lines(app: FlyApp, ctx: RewriteContext) -> list[str]:
    lines: list[str] = []
    for f in app.files:
        if FLY_ENTRYPOINT_D_RE.search(f.guest_path):
            ctx.notes.append(f"[[files]] {f.guest_path}: a Fly-only driver hook, not copied")
            continue
        if f.local_path:
            if not lines:
                lines.append(f"{MARK} [[files]] from fly.toml (Fly injected them at deploy time)")
            lines.append(f"COPY {f.local_path} {f.guest_path}")
            if f.guest_path.endswith(".sh") or "entrypoint" in f.guest_path or "start" in f.guest_path.rsplit("/", 1)[-1]:
                lines.append(f"RUN chmod +x {f.guest_path}")
        elif f.secret_name:
            ctx.notes.append(f"[[files]] {f.guest_path} came from the secret {f.secret_name}: mount that secret as a "
                             "file on the target (it is not baked into the image)")
        else:
            ctx.notes.append(f"[[files]] {f.guest_path} had an inline raw_value: write that file into the image "
                             "yourself (flymigrate does not copy inline values)")
    return lines


def runpod_link_lines(ctx: RewriteContext) -> list[str]:
    if not ctx.mount_path or not ctx.runpod_mount or ctx.mount_path in ("/", ""):  # runpod_mount: set by the target
        return []
    parent = ctx.mount_path.rstrip("/").rsplit("/", 1)[0] or "/"
    return [f"{MARK} RunPod mounts the network volume at /runpod-volume; the app reads {ctx.mount_path}",
            f"RUN mkdir -p {parent} && rm -rf {ctx.mount_path} && ln -s {ctx.runpod_mount} {ctx.mount_path}"]


def rewrite_dockerfile(text: str, ctx: RewriteContext, *, uses_gpu: bool, shown: str = "Dockerfile") -> str:
    """The portable Dockerfile. Idempotent on its own output (a second pass changes nothing)."""
    df = parse_dockerfile_text(text, shown)
    lines = text.split("\n")
    trailing_nl = text.endswith("\n")
    if trailing_nl:
        lines = lines[:-1]
    replace: dict[int, list[str]] = {}  # first line index -> new lines; the rest of the span is removed
    spans: dict[int, int] = {}
    final_from = max((i for i, ins in enumerate(df.instructions) if ins.keyword == "FROM"), default=None)
    cuda_swap = uses_gpu and needs_cuda_base(df) is not None  # the same decision the plan shows
    first_cmd_final = None
    explicit = explicit_command_lines(ctx.app)
    for idx, ins in enumerate(df.instructions):
        start, end = ins.line - 1, ins.end_line  # [start, end)
        original = "\n".join(lines[start:end])
        kw = ins.keyword
        new: list[str] | None = None
        if kw == "FROM" and idx == final_from and cuda_swap:
            toks = ins.args.split()
            img_i = next((i for i, t in enumerate(toks) if not t.startswith("--")), None)
            if img_i is not None and cuda_swap:
                old_img = toks[img_i]
                toks[img_i] = CUDA_BASE
                new = [f"{MARK} was FROM {old_img} (no CUDA user-space; on Fly the host injected the driver libs)",
                       "FROM " + " ".join(toks)]
                if old_img.split("/")[-1].startswith("python"):
                    new += [f"{MARK} the CUDA base has no Python: install the distribution's (3.10 on Ubuntu 22.04)",
                            ("RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip "
                             "python-is-python3 && rm -rf /var/lib/apt/lists/*")]
        elif kw in ("COPY", "ADD") and FLY_ENTRYPOINT_D_RE.search(ins.args):
            new = [f"{MARK} removed a Fly-only /opt/nvidia/entrypoint.d hook: {kw} {ins.args}"]
        elif kw == "RUN" and not ins.args.lstrip().startswith("["):
            body = ins.args if "\n" not in ins.args else None
            if body is not None:
                kept, reasons = _drop_segments(body, ctx)
                if reasons == ["!unsafe"]:
                    ctx.notes.append(f"{shown}:{ins.line}: a Fly shim or baked weight download sits inside a quoted "
                                     "command; remove it by hand")
                    reasons = []
                if reasons:
                    what = ", ".join(sorted(set(reasons)))
                    if kept is None:
                        new = [f"{MARK} removed ({what}): RUN {body}"]
                    else:
                        new = [f"{MARK} removed ({what}) from: RUN {body}",
                               "RUN " + fix_ipv6(fix_fly_vars(kept, ctx, f"{shown}:{ins.line}"))]
        if new is None and final_from is not None and idx > final_from and kw in ("CMD", "ENTRYPOINT") and \
                any(ln.startswith(kw + " ") for ln in explicit) and original not in explicit:
            new = [f"{MARK} replaced by the fly.toml command below: {original.strip()}"]
        if new is None and kw in ("RUN", "CMD", "ENTRYPOINT", "ENV", "ARG", "LABEL"):
            fixed = fix_ipv6(fix_fly_vars(original, ctx, f"{shown}:{ins.line}"))
            if kw == "ENV":
                fixed = re.sub(r"((?:^|\s)[A-Za-z_][A-Za-z0-9_]*=)([\"']?)(::|\[::\])\2(?=\s|$)", r"\g<1>\g<2>0.0.0.0\g<2>", fixed)
            if fixed != original:
                new = fixed.split("\n")
        if new is not None:
            replace[start] = new
            spans[start] = end
        if final_from is not None and idx > final_from and kw in ("CMD", "ENTRYPOINT") and first_cmd_final is None:
            first_cmd_final = start
    out: list[str] = []
    i = 0
    extra_before_cmd = files_lines(ctx.app, ctx) + runpod_link_lines(ctx)
    already = set(lines)
    extra_before_cmd = _only_new(extra_before_cmd, already)
    cmd_lines = _only_new(explicit_command_lines(ctx.app), already)
    inserted = False
    while i < len(lines):
        if first_cmd_final is not None and i == first_cmd_final and extra_before_cmd and not inserted:
            out += extra_before_cmd
            inserted = True
        if i in replace:
            out += replace[i]
            i = spans[i]
            continue
        out.append(lines[i])
        i += 1
    if extra_before_cmd and not inserted:
        out += extra_before_cmd
    out += cmd_lines
    result = "\n".join(out)
    return result + "\n" if trailing_nl or out else result


def _only_new(block: list[str], existing: set[str]) -> list[str]:
    """Drop a generated block that the text already holds (idempotence when re-run on our own output)."""
    instr = [ln for ln in block if not ln.startswith(MARK)]
    if instr and all(ln in existing for ln in instr):
        return []
    return block


def thin_dockerfile(image: str, ctx: RewriteContext) -> str | None:
    """For ``[build] image`` apps: a Dockerfile ``FROM <image>`` carrying what must change, or None if nothing must."""
    body = files_lines(ctx.app, ctx) + runpod_link_lines(ctx) + explicit_command_lines(ctx.app)
    if not body:
        return None
    head = [f"{MARK} generated for [build] image = {image!r} in fly.toml: the image itself is unchanged;",
            f"{MARK} this adds what Fly applied at deploy time.",
            f"FROM {image}"]
    return "\n".join(head + body) + "\n"


def rewrite_script(text: str, ctx: RewriteContext, shown: str) -> str:
    """A shell script (start.sh, entrypoint): shims out, IPv6 binds to 0.0.0.0, FLY_* made explicit."""
    out: list[str] = []
    for n, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        kept, reasons = _drop_segments(stripped, RewriteContext(ctx.app, ctx.target, ctx.app_slug, False))
        if reasons == ["!unsafe"]:
            ctx.notes.append(f"{shown}:{n}: a Fly driver shim sits inside a quoted command; remove it by hand")
            reasons = []
        if reasons:
            if kept is None:
                out.append(f"{indent}{MARK} removed Fly GPU driver shim: {stripped}")
                continue
            line = indent + kept
        out.append(fix_ipv6(fix_fly_vars(line, ctx, f"{shown}:{n}")))
    return "\n".join(out)


def effective_command(dockerfile_text: str | None) -> tuple[list[str] | None, list[str] | None]:
    """(ENTRYPOINT, CMD) of the final stage as argv lists (shell form becomes ``sh -c``)."""
    if dockerfile_text is None:
        return None, None
    df = parse_dockerfile_text(dockerfile_text, "Dockerfile")
    ep: list[str] | None = None
    cmd: list[str] | None = None
    for ins in df.instructions:
        if ins.keyword == "FROM":
            ep, cmd = None, None
        elif ins.keyword in ("CMD", "ENTRYPOINT"):
            a = ins.args.strip()
            argv: list[str]
            if a.startswith("["):
                try:
                    argv = [str(x) for x in json.loads(a)]
                except ValueError:
                    argv = ["sh", "-c", a]
            else:
                argv = ["sh", "-c", a]
            if ins.keyword == "CMD":
                cmd = argv
            else:
                ep = argv
    return ep, cmd
