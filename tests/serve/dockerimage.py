"""The image a platform would build from the (rewritten) Dockerfile, as far as starting its process needs.

Reads the Dockerfile as Docker does (line continuations, ``#`` comments, JSON and shell forms, ``ENV k=v`` and
``ENV k v``, ``$VAR``/``${VAR}`` in ENV/WORKDIR/COPY, the last stage of a multi-stage build) and yields:
ENTRYPOINT/CMD (a Dockerfile ENTRYPOINT resets an inherited CMD; shell form is ``/bin/sh -c "..."``, and a
shell-form ENTRYPOINT ignores CMD -- Dockerfile reference, "Understand how CMD and ENTRYPOINT interact"), ENV,
WORKDIR, the files COPY/ADD put in the image, and the RUN steps.

The base images are not pulled (no network): ``BASES`` holds what the official images set, each with its
source. RUN steps are replayed only when they shape the file system the way the server sees it (mkdir, ln,
cp, mv, rm, chmod, touch, ``huggingface-cli``/``hf download``); package installs are recorded (the pinned
versions decide stand-in behaviour such as vLLM's /ping) and replaced by the stand-ins.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

FS_COMMANDS = {"mkdir", "ln", "cp", "mv", "rm", "chmod", "chown", "touch", "huggingface-cli", "hf", "true"}


@dataclass
class Base:
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    pythons: tuple[str, ...] = ("python3",)  # interpreters on PATH
    packages: dict[str, str] = field(default_factory=dict)  # name -> version ("" = unknown)
    files: dict[str, str] = field(default_factory=dict)  # container path -> stand-in executable name
    libs: tuple[str, ...] = ()  # GPU libraries in the image (cublas, cudnn)
    cuda: str = ""  # CUDA version of the stack ("" unknown)
    known: bool = True


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def base_for(image: str) -> Base:
    """What an official base image sets. Sources next to each entry."""
    ref = image.split("@", 1)[0]
    name, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "")
    name = name or ref
    tag = tag or "latest"
    if name in ("vllm/vllm-openai",):
        # vllm docker/Dockerfile, stage vllm-openai: ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"]
        # (0.6-0.8 line); Ubuntu with python3 only (no `python`); CUDA 12.4 builds before 0.9.
        ver = tag.lstrip("v")
        new = _ver(ver) >= (0, 9, 0)
        return Base(entrypoint=["vllm", "serve"] if new else ["python3", "-m", "vllm.entrypoints.openai.api_server"],
                    pythons=("python3",), packages={"vllm": ver if ver != "latest" else ""},
                    libs=("cublas", "cudnn"), cuda="12.8" if new else "12.4")
    if name.endswith("huggingface/text-generation-inference"):
        # huggingface/text-generation-inference Dockerfile (final image): ENTRYPOINT ["text-generation-launcher"],
        # CMD ["--json-output"], ENV HUGGINGFACE_HUB_CACHE=/data PORT=80; conda python (python and python3).
        return Base(entrypoint=["text-generation-launcher"], cmd=["--json-output"],
                    env={"HUGGINGFACE_HUB_CACHE": "/data", "HF_HUB_ENABLE_HF_TRANSFER": "1", "PORT": "80"},
                    pythons=("python", "python3"), packages={"text-generation-inference": tag},
                    libs=("cublas", "cudnn"), cuda="12.4")
    if name in ("ollama/ollama",):
        # ollama/ollama Dockerfile: ENV OLLAMA_HOST=0.0.0.0:11434, ENTRYPOINT ["/bin/ollama"], CMD ["serve"]; no python
        return Base(entrypoint=["/bin/ollama"], cmd=["serve"], env={"OLLAMA_HOST": "0.0.0.0:11434"}, pythons=(),
                    packages={"ollama": tag}, files={"/bin/ollama": "ollama"}, libs=("cublas",), cuda="")
    if name in ("python", "library/python"):
        # docker-library/python: CMD ["python3"]; `python` and `python3` in /usr/local/bin; no CUDA libraries
        return Base(cmd=["python3"], pythons=("python", "python3"))
    m = re.match(r"(\d+\.\d+)", tag)
    if name in ("nvidia/cuda",) and m:
        # nvidia/cuda tags VERSION-[cudnn-]runtime|devel-OS: runtime and devel carry cuBLAS; "cudnn" ones cuDNN;
        # no python (gitlab.com/nvidia/container-images/cuda)
        libs = ("cublas", "cudnn") if "cudnn" in tag else ("cublas",) if ("runtime" in tag or "devel" in tag) else ()
        return Base(cmd=["/bin/bash"], pythons=(), libs=libs, cuda=m.group(1))
    if name in ("pytorch/pytorch",):
        mc = re.search(r"cuda(\d+\.\d+)", tag)
        return Base(pythons=("python", "python3"), libs=("cublas", "cudnn"), cuda=mc.group(1) if mc else "",
                    packages={"torch": tag.split("-")[0]})
    if name in ("ubuntu", "debian"):
        return Base(cmd=["/bin/bash"], pythons=())
    return Base(known=False)


def _ver(v: str) -> tuple[int, ...]:
    out = []
    for p in re.split(r"[.+-]", v):
        if not p.isdigit():
            break
        out.append(int(p))
    return tuple(out) or (0,)


@dataclass
class Instr:
    op: str
    args: str
    line: int


def parse(text: str) -> list[Instr]:
    out: list[Instr] = []
    buf = ""
    start = 0
    lines = text.splitlines()
    i = 0
    heredoc: str | None = None
    while i < len(lines):
        raw = lines[i]
        i += 1
        if heredoc is not None:
            buf += "\n" + raw
            if raw.strip() == heredoc:
                heredoc = None
                out.append(_instr(buf, start))
                buf = ""
            continue
        s = raw.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue
        if not buf:
            start = i
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        hm = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", buf)
        if hm and buf.split(None, 1)[0].upper() in ("RUN", "COPY"):
            heredoc = hm.group(1)
            continue
        out.append(_instr(buf, start))
        buf = ""
    if buf:
        out.append(_instr(buf, start))
    return out


def _instr(s: str, line: int) -> Instr:
    op, _, rest = s.strip().partition(" ")
    return Instr(op.upper(), rest.strip(), line)


def expand(s: str, env: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return env.get(name, "")
    return re.sub(r"\$\{(\w+)(?::-[^}]*)?\}|\$(\w+)", sub, s)


def exec_form(args: str) -> list[str] | None:
    if args.startswith("["):
        try:
            v = json.loads(args)
        except ValueError:
            return None
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return v
    return None


@dataclass
class Stage:
    """An earlier build stage (``FROM base AS name``): what it copies from the context and the RUN steps that
    make its files. The harness plays a stage only where the last stage copies from it (``COPY --from=name``)."""

    name: str
    base_ref: str
    copies: list[tuple[list[str], str, int]] = field(default_factory=list)  # (context sources, stage dest, line)
    runs: list[tuple[str, int]] = field(default_factory=list)
    workdir: str = "/"


@dataclass
class Image:
    base_ref: str
    base: Base
    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    workdir: str
    copies: list[tuple[list[str], str, int]]  # (context sources, container dest, line)
    runs: list[tuple[str, int]]  # (shell command, line)
    workdirs: list[str]
    packages: dict[str, str]
    pythons: set[str]
    libs: set[str]
    notes: list[str]
    shell_entrypoint: bool = False
    build_args: dict[str, str] = field(default_factory=dict)
    # COPY --from=<stage> in the last stage: (the stage, its path, container dest, line)
    stage_copies: list[tuple[Stage, str, str, int]] = field(default_factory=list)

    def argv(self, entrypoint: list[str] | None = None, cmd: list[str] | None = None) -> list[str]:
        """Docker's rule: a shell-form ENTRYPOINT ignores CMD; else ENTRYPOINT + CMD."""
        ep = self.entrypoint if entrypoint is None else entrypoint
        c = self.cmd if cmd is None else cmd
        if entrypoint is None and self.shell_entrypoint:
            return list(ep)
        return list(ep) + list(c)


def load(dockerfile: Path) -> Image:
    instrs = parse(dockerfile.read_text(encoding="utf-8"))
    # last stage only
    froms = [k for k, ins in enumerate(instrs) if ins.op == "FROM"]
    if not froms:
        raise ValueError(f"{dockerfile}: no FROM")
    args: dict[str, str] = {}
    for ins in instrs[:froms[0]]:
        if ins.op == "ARG":
            k, _, v = ins.args.partition("=")
            args[k.strip()] = v.strip().strip('"')
    stages = _stages(instrs, froms, args)
    stage = instrs[froms[-1]:]
    base_ref = expand(stage[0].args.split()[0] if not stage[0].args.startswith("--") else stage[0].args.split()[1], args)
    base = base_for(base_ref)
    env = {"PATH": DEFAULT_PATH, **base.env}
    ep, cmd = list(base.entrypoint), list(base.cmd)
    workdir = base.workdir
    img = Image(base_ref, base, ep, cmd, env, workdir, [], [], [], dict(base.packages), set(base.pythons),
                set(base.libs), [] if base.known else [f"base image {base_ref} is not in the harness's table: "
                                                        "assumed to have python3 and no GPU libraries"])
    for ins in stage[1:]:
        a = ins.args
        if ins.op == "ENV":
            for k, v in _env_pairs(a):
                env[k] = expand(v, env)
        elif ins.op == "ARG":
            k, _, v = a.partition("=")
            args[k.strip()] = v.strip().strip('"')
        elif ins.op == "WORKDIR":
            w = expand(a.strip().strip('"'), env)
            workdir = w if w.startswith("/") else str(Path(workdir) / w)
            img.workdirs.append(workdir)
        elif ins.op in ("COPY", "ADD"):
            parts = exec_form(a) or shlex.split(a)
            parts = [p for p in parts if not p.startswith("--")] if not any(
                p.startswith("--from") for p in parts) else []
            if len(parts) >= 2:
                dest = expand(parts[-1], env)
                if not dest.startswith("/"):
                    dest = str(Path(workdir) / dest) + ("/" if dest.endswith("/") or dest == "." else "")
                img.copies.append(([expand(p, env) for p in parts[:-1]], dest, ins.line))
            elif any(p.startswith("--from") for p in (exec_form(a) or shlex.split(a))):
                toks = exec_form(a) or shlex.split(a)
                name = next(p.split("=", 1)[1] for p in toks if p.startswith("--from="))
                paths = [p for p in toks if not p.startswith("--")]
                st = stages.get(name.lower())
                if st is None or len(paths) != 2:
                    img.notes.append(f"Dockerfile:{ins.line}: COPY --from={name} not replayed (an image, or not one "
                                     "source and one destination)")
                else:
                    dest = expand(paths[1], env)
                    if not dest.startswith("/"):
                        dest = str(Path(workdir) / dest) + ("/" if dest.endswith("/") else "")
                    img.stage_copies.append((st, paths[0], dest, ins.line))
        elif ins.op == "RUN":
            img.runs.append((a, ins.line))  # the shell expands $VARS (ARGs are in its environment)
            _packages(a, img)
        elif ins.op == "ENTRYPOINT":
            ep = exec_form(a) or ["/bin/sh", "-c", a]
            img.shell_entrypoint = exec_form(a) is None
            cmd = []  # a Dockerfile ENTRYPOINT resets the CMD inherited from the base image
        elif ins.op == "CMD":
            cmd = exec_form(a) or ["/bin/sh", "-c", a]
    img.entrypoint, img.cmd, img.env, img.workdir = ep, cmd, env, workdir
    img.build_args = {k: v for k, v in args.items() if v}
    return img


def _stages(instrs: list[Instr], froms: list[int], args: dict[str, str]) -> dict[str, Stage]:
    """The named stages before the last one (their COPY from the context and their RUN steps)."""
    out: dict[str, Stage] = {}
    for k, start in enumerate(froms[:-1]):
        toks = [t for t in instrs[start].args.split() if not t.startswith("--")]
        if len(toks) < 3 or toks[1].lower() != "as":
            continue
        st = Stage(toks[2].lower(), expand(toks[0], args))
        for ins in instrs[start + 1:froms[k + 1]]:
            if ins.op == "WORKDIR":
                w = ins.args.strip().strip('"')
                st.workdir = w if w.startswith("/") else str(Path(st.workdir) / w)
            elif ins.op in ("COPY", "ADD"):
                parts = exec_form(ins.args) or shlex.split(ins.args)
                if not any(p.startswith("--from") for p in parts):
                    parts = [p for p in parts if not p.startswith("--")]
                    if len(parts) >= 2:
                        dest = parts[-1]
                        if not dest.startswith("/"):  # relative to the stage's WORKDIR
                            dest = posixpath.normpath(posixpath.join(st.workdir, dest)) + (
                                "/" if dest.endswith("/") or dest in (".", "./") else "")
                        st.copies.append((parts[:-1], dest, ins.line))
            elif ins.op == "RUN":
                st.runs.append((ins.args, ins.line))
        out[st.name] = st
    return out


_CC_NAMES = frozenset({"cc", "gcc", "clang", "musl-gcc"})


def compile_step(stage: Stage, path: str) -> tuple[list[str], list[str], int] | None:
    """The stage's C compile that writes ``path`` (``RUN gcc [flags] -o PATH src.c ...``): (the compiler's
    arguments, the context files of its C sources in order, the RUN line), or None when no RUN compiles it.
    A source is mapped back to the build context through the stage's COPY lines."""
    for run, line in stage.runs:
        for seg in re.split(r"&&|;|\|\|", run):
            try:
                toks = shlex.split(seg)
            except ValueError:
                continue
            if not toks or toks[0].rsplit("/", 1)[-1] not in _CC_NAMES or "-o" not in toks:
                continue
            k = toks.index("-o")
            out = toks[k + 1] if k + 1 < len(toks) else ""
            if not out.startswith("/"):
                out = posixpath.normpath(posixpath.join(stage.workdir, out))
            if out.rstrip("/") != path.rstrip("/"):
                continue
            args, sources = [], []
            for t in toks[1:k] + toks[k + 2:]:
                if t.endswith(".c"):
                    where = t if t.startswith("/") else posixpath.normpath(posixpath.join(stage.workdir, t))
                    src = next((srcs[0] for srcs, dest, _l in stage.copies if len(srcs) == 1 and
                                (dest == where or dest.endswith("/") and dest + Path(srcs[0]).name == where)), None)
                    if src is None:
                        return None
                    sources.append(src)
                else:
                    args.append(t)
            return args, sources, line
    return None


def _env_pairs(a: str) -> list[tuple[str, str]]:
    toks = shlex.split(a, posix=True)
    if toks and "=" not in toks[0]:  # legacy `ENV key value with spaces`
        return [(toks[0], a.split(None, 1)[1].strip() if len(a.split(None, 1)) > 1 else "")]
    return [tuple(t.split("=", 1)) for t in toks if "=" in t]  # type: ignore[misc]


_PIN = re.compile(r"(?<![\w.-])([A-Za-z0-9_.-]+)\s*(?:==|>=|~=)\s*([0-9][\w.+-]*)")


def _packages(run: str, img: Image) -> None:
    if re.search(r"\bpip3?\b|\buv\b", run):
        for m in _PIN.finditer(run):
            img.packages[m.group(1).lower()] = m.group(2)
        for name in ("vllm", "faster-whisper", "torch", "ctranslate2", "nvidia-cublas-cu12", "nvidia-cudnn-cu12",
                     "text-generation"):
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", run) and name not in img.packages:
                img.packages[name] = ""
        if "nvidia-cublas-cu12" in img.packages:
            img.libs.add("cublas")
        if "nvidia-cudnn-cu12" in img.packages:
            img.libs.add("cudnn")
    if re.search(r"apt(-get)?\s+install", run):
        if re.search(r"\bpython3\b", run):
            img.pythons.add("python3")
        if re.search(r"\bpython-is-python3\b", run):
            img.pythons.add("python")
        if re.search(r"libcudnn", run):
            img.libs.add("cudnn")
        if re.search(r"libcublas", run):
            img.libs.add("cublas")
    if re.search(r"ollama\.com/install\.sh", run):
        img.packages["ollama"] = ""
        img.notes.append("ollama installed by its install script (to /usr/local/bin/ollama)")
    if re.search(r"ln\s+-s\S*\s+\S*python3\S*\s+\S*/python(\s|$)", run):
        img.pythons.add("python")


def fs_segments(run: str) -> tuple[list[str], list[str]]:
    """Split a RUN into shell segments; return (replayed, skipped)."""
    segs = [s.strip() for s in re.split(r"&&|;|\|\|", run) if s.strip()]
    keep, skip = [], []
    for s in segs:
        try:
            first = shlex.split(s)[0]
        except (ValueError, IndexError):
            skip.append(s)
            continue
        (keep if first in FS_COMMANDS else skip).append(s)
    return keep, skip


def abs_paths(segment: str) -> list[str]:
    try:
        toks = shlex.split(segment)
    except ValueError:
        return []
    return [t.rstrip("/") or "/" for t in toks if t.startswith("/")]
