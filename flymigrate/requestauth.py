"""Rewritten clients send the auth the target needs: find each request a client makes to the migrated app's URL
and add the target's header, read from the environment by NAME (never a value).

The target says which headers (``VerifySpec.client_headers``: header, value prefix, env var) and whether they are
needed (public deployments need none); this module knows no target. One function, :func:`analyze`, gives both the
plan's lines (file:line, "will send" or "add by hand") and apply's edits, from the same text, so apply does exactly
what the plan said.

Python is read with the stdlib ``ast`` (positions only) and edited as text (minimal insertions, the file's
formatting kept): a URL is "this app's" when a string literal holds one of the plan's URL hits, and it flows through
names (all of a name's assignments must carry it, else the site is ambiguous and left to the user), attributes
(``self.base = URL``), f-strings, ``+``/``%``, ``str`` methods, ``os.getenv(..., URL)`` defaults and the parameters of
the file's own functions (every call passes it). Shell ``curl`` commands get ``-H``. Anything else that uses the URL
(another library, JavaScript, a call that hides its kwargs) becomes a manual line: never silently skipped.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .model import BaseUrlHit
from .scan import env_read_pattern, rename_env_reads

Header = tuple[str, str, str]  # (header name, value prefix, env var): ("Authorization", "Bearer ", "RUNPOD_API_KEY")

PY_EXT = (".py", ".pyw")
SH_EXT = (".sh", ".bash", ".zsh", ".ksh")
JS_EXT = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".mts", ".cts")
# other programming languages: a URL there is a client flymigrate cannot rewrite (listed by hand)
OTHER_CODE_EXT = (".go", ".rs", ".rb", ".java", ".kt", ".kts", ".php", ".cs", ".swift", ".dart", ".scala", ".ex",
                  ".exs", ".lua", ".pl", ".r", ".jl", ".c", ".cc", ".cpp", ".hs", ".clj", ".ps1")
CONFIG_EXT = (".yaml", ".yml", ".json", ".toml", ".ini", ".cfg", ".conf", ".env", ".properties")
MAX_TEXT = 2 * 1024 * 1024  # client code bigger than this is not parsed (a generated bundle): listed by hand

VERBS = {"get", "post", "put", "patch", "delete", "head", "options", "request", "stream"}
# calls whose result still is the URL (transforms), and calls that only look at it (no request)
_TRANSFORM_ATTRS = {"format", "rstrip", "strip", "lstrip", "replace", "removesuffix", "removeprefix", "join",
                    "urljoin", "getenv", "get", "setdefault", "lower", "format_map", "geturl", "_replace"}
_TRANSFORM_NAMES = {"urljoin", "getenv", "str", "join", "urlparse", "urlsplit", "quote", "URL", "Path"}
_INERT_NAMES = {"print", "len", "isinstance", "repr", "hash", "bool", "type", "id", "sorted", "set", "list", "tuple",
                "dict", "any", "all", "hasattr", "getattr", "setattr", "open", "exit", "echo"}
_INERT_ATTRS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log", "write", "echo",
                "print", "startswith", "endswith", "split", "rsplit", "partition", "count", "find", "index",
                "encode", "add", "append", "extend", "insert", "update", "secho", "assertEqual", "assertIn",
                "setdefault"}
_CLIENT_CTORS = {"Client", "AsyncClient", "ClientSession", "Session", "AsyncSession"}  # httpx / aiohttp: headers=
_BASE_KWS = ("base_url", "api_base", "openai_api_base", "base_uri", "endpoint_url")


@dataclass(frozen=True)
class Edit:
    start: int  # offset in the text (characters)
    end: int
    text: str


@dataclass(frozen=True)
class AuthSite:
    """One request to the app's URL: what the plan says about it, and (action "add") the edits that do it."""

    path: str
    line: int
    action: str  # add | manual
    what: str  # the plan line after "path:line: "
    edits: tuple[Edit, ...] = ()

    @property
    def plan_line(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


@dataclass
class FileAuth:
    sites: list[AuthSite] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)  # every "add" site's edits plus `import os` when needed
    prose_only: bool = False  # the URL is only in comments / docstrings (no code uses it)

    @property
    def changes(self) -> list[AuthSite]:
        return [s for s in self.sites if s.action == "add"]

    @property
    def manual(self) -> list[AuthSite]:
        return [s for s in self.sites if s.action == "manual"]


def describe(headers: Sequence[Header]) -> str:
    """``Authorization: Bearer $RUNPOD_API_KEY`` (names only)."""
    return ", ".join(f"{h}: {p}${e}" for h, p, e in headers)


def is_client_code(path: str, text: str | None = None) -> str | None:
    """The language flymigrate reads for client auth: ``py`` | ``sh`` | ``js`` | ``other`` | None (not code)."""
    low = path.lower()
    if low.endswith(PY_EXT):
        return "py"
    if low.endswith(SH_EXT):
        return "sh"
    if low.endswith(JS_EXT):
        return "js"
    if low.endswith(OTHER_CODE_EXT):
        return "other"
    if low.endswith((".md", ".markdown", ".rst")):
        return "md"  # documentation: its fenced shell examples (curl) are rewritten like a script
    base = low.rsplit("/", 1)[-1]
    if re.fullmatch(r"fly(\.[\w-]+)?\.(toml|json|ya?ml)", base):
        return None  # the app's own config: its [env] is rewritten by the Dockerfile step
    if base.startswith(".env") or base.endswith(CONFIG_EXT):
        return "config"  # the URL is configured here; the code that reads it is elsewhere
    if text is not None and "." not in low.rsplit("/", 1)[-1]:
        first = text.split("\n", 1)[0]
        if first.startswith("#!"):
            if "python" in first:
                return "py"
            if re.search(r"\b(ba|z|k|da)?sh\b", first):
                return "sh"
            if "node" in first or "deno" in first or "bun" in first:
                return "js"
    return None


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """``text`` with non-overlapping edits made (positions in the original text)."""
    out: list[str] = []
    pos = 0
    for e in sorted(edits, key=lambda e: (e.start, e.end)):
        if e.start < pos:
            raise ValueError("overlapping edits")
        out.append(text[pos:e.start])
        out.append(e.text)
        pos = e.end
    out.append(text[pos:])
    return "".join(out)


def hit_offsets(text: str, hits: Iterable[BaseUrlHit]) -> list[tuple[int, int]]:
    """(start, end) character offsets of the hits that are still where the scan saw them."""
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    out = []
    for h in hits:
        if h.line - 1 >= len(starts):
            continue
        off = starts[h.line - 1] + h.column - 1
        if text[off: off + len(h.old)] == h.old:
            out.append((off, off + len(h.old)))
    kept: list[tuple[int, int]] = []
    for a, b in sorted(set(out)):
        if not kept or a >= kept[-1][1]:
            kept.append((a, b))
    return kept


def analyze(text: str, path: str, hits: Sequence[BaseUrlHit], headers: Sequence[Header],
            renames: Sequence[tuple[str, str]] = ()) -> FileAuth:
    """The client-auth sites of one file. ``hits``: this app's URL occurrences in ``text`` (the scan's, fdaa
    excluded); ``headers``: what the target needs (empty: nothing to do); ``renames``: the env reads the URL
    step renames in the same file (a header that reads the old name already reads the new one after it)."""
    fa = FileAuth()
    hits = [h for h in hits if h.kind != "fdaa"]
    if not headers or not hits:
        return fa
    lang = is_client_code(path, text)
    want = describe(headers)
    if lang is None:
        return fa
    spans = hit_offsets(text, hits)
    if not spans:
        return fa
    first = min(h.line for h in hits)
    if len(text) > MAX_TEXT:
        fa.sites.append(AuthSite(path, first, "manual", f"send `{want}` on its requests to the endpoint by hand "
                                 "(the file is too big to read as client code)"))
        return fa
    if lang == "py":
        try:
            _Py(text, path, spans, headers, renames, fa).run()
        except SyntaxError as exc:
            fa.sites = [AuthSite(path, first, "manual", f"send `{want}` on the requests to the endpoint by hand "
                                 f"(the file does not parse as Python 3: {exc.msg}, line {exc.lineno})")]
            fa.edits = []
    elif lang == "sh":
        _shell(text, path, spans, headers, renames, fa)
    elif lang == "md":
        # only inside fenced code blocks (``` / ~~~), read as shell; prose never needs a header
        masked = _fenced_only(text)
        _shell(masked, path, [sp for sp in spans if masked[sp[0]: sp[1]] == text[sp[0]: sp[1]]], headers, renames,
               fa)
        fa.prose_only = True
    elif lang == "js":
        _js(text, path, spans, headers, renames, fa)
    elif lang == "config":
        for line in sorted({h.line for h in hits}):
            fa.sites.append(AuthSite(path, line, "manual", f"the endpoint URL is configured here: the code that reads "
                                     f"it must send `{want}` (read from the environment by name)"))
        return fa
    else:
        for line in sorted({h.line for h in hits}):
            fa.sites.append(AuthSite(path, line, "manual", f"add `{want}` by hand to the requests that use this URL "
                                     "(this language's clients are not rewritten; read the value from the "
                                     "environment variable " + " and ".join(e for _, _, e in headers) + ")"))
        return fa
    if fa.changes:
        new = apply_edits(text, fa.edits)
        if lang == "py":
            try:
                ast.parse(new)
            except SyntaxError:
                fa.sites = [AuthSite(s.path, s.line, "manual", f"add `{want}` to this request by hand (flymigrate's "
                                     "edit would not parse)") if s.action == "add" else s for s in fa.sites]
                fa.edits = []
    found = bool(fa.sites)
    fa.sites = [s for s in fa.sites if s.action != "has"]
    if not found and not fa.prose_only:
        fa.sites.append(AuthSite(path, first, "manual", f"the endpoint URL is here but no request that uses it was "
                                 f"found in this file: wherever it is used (another module, a config read), send "
                                 f"`{want}`"))
    fa.sites.sort(key=lambda s: (s.line, s.action))
    return fa


def reads_env(src: str, env: str, renames: Sequence[tuple[str, str]]) -> bool:
    return env_read_pattern(env).search(rename_env_reads(src, renames)) is not None


# ------------------------------------------------------------------------------------------------ Python
YES, NO, AMBIG, SKIP = "yes", "no", "ambiguous", "skip"  # SKIP: a name read while it is being decided


def _any(vals: Iterable[str]) -> str:
    """Any part carries the URL (a concatenation, a transform)."""
    vals = set(vals)
    return YES if YES in vals else AMBIG if AMBIG in vals else SKIP if SKIP in vals else NO


def _join(vals: Iterable[str]) -> str:
    """Every binding carries the URL (a name): yes; some do: ambiguous."""
    vals = set(vals) - {SKIP}
    if not vals:
        return NO
    if vals == {YES}:
        return YES
    if YES in vals or AMBIG in vals:
        return AMBIG
    return NO


class _Py:
    def __init__(self, text: str, path: str, spans: list[tuple[int, int]], headers: Sequence[Header],
                 renames: Sequence[tuple[str, str]], fa: FileAuth) -> None:
        self.text, self.path, self.spans, self.headers, self.renames, self.fa = text, path, spans, headers, renames, fa
        self.tree = ast.parse(text)
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.lines = text.split("\n")
        # scopes: id(function node) or 0 (module) -> name -> value nodes (None: bound to something unknown)
        self.binds: dict[int, dict[str, list[ast.AST | None]]] = {0: {}}
        self.attrs: dict[str, list[ast.AST | None]] = {}
        self.scope_of: dict[int, int] = {}  # id(node) -> scope id
        self.funcs: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        self.memo: dict[tuple[int, str], str] = {}
        self.busy: set[tuple[int, str]] = set()
        self.imports_os = False

    # positions
    def off(self, line: int, col: int) -> int:
        """Character offset of an ast (line, UTF-8 byte column)."""
        s = self.lines[line - 1]
        return self.starts[line - 1] + len(s.encode("utf-8")[:col].decode("utf-8", "replace"))

    def span(self, n: ast.AST) -> tuple[int, int]:
        return self.off(n.lineno, n.col_offset), self.off(n.end_lineno, n.end_col_offset)  # type: ignore[attr-defined,arg-type]

    def src(self, n: ast.AST) -> str:
        a, b = self.span(n)
        return self.text[a:b]

    # bindings
    def _collect(self, node: ast.AST, scope: int) -> None:
        for child in ast.iter_child_nodes(node):
            self._node(child, scope)

    def _node(self, child: ast.AST, scope: int) -> None:
        """Record ``child`` (its scope, what it binds) and walk into it."""
        self.scope_of[id(child)] = scope
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            sid = id(child)
            self.binds[sid] = {}
            if not isinstance(child, ast.Lambda):
                self.funcs.setdefault(child.name, []).append(child)
                self.binds[scope].setdefault(child.name, []).append(None)
                for d in child.decorator_list:
                    self._node(d, scope)
            a = child.args
            for d in a.defaults + [x for x in a.kw_defaults if x is not None]:
                self._node(d, scope)
            for p in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
                self.binds[sid].setdefault(p.arg, [])
            for st in ([child.body] if isinstance(child, ast.Lambda) else child.body):
                self._node(st, sid)
            return
        if isinstance(child, ast.ClassDef):
            self.binds[scope].setdefault(child.name, []).append(None)
        if isinstance(child, ast.Global):
            for n in child.names:
                self.binds[scope].setdefault(n, [])
        if isinstance(child, (ast.Assign, ast.AnnAssign)):
            targets = child.targets if isinstance(child, ast.Assign) else [child.target]
            for t in targets:
                self._bind_target(t, child.value, scope)
        elif isinstance(child, ast.NamedExpr):
            self._bind_target(child.target, child.value, scope)
        elif isinstance(child, (ast.For, ast.AsyncFor, ast.comprehension)):
            self._bind_target(child.target, None, scope)
        elif isinstance(child, (ast.With, ast.AsyncWith)):
            for it in child.items:
                if it.optional_vars is not None:
                    self._bind_target(it.optional_vars, None, scope)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            for a in child.names:
                name = (a.asname or a.name).split(".")[0]
                if name == "os" and isinstance(child, ast.Import) and scope == 0:
                    self.imports_os = True
                self.binds[scope].setdefault(name, []).append(None)
        elif isinstance(child, ast.ExceptHandler) and child.name:
            self.binds[scope].setdefault(child.name, []).append(None)
        self._collect(child, scope)

    def _bind_target(self, t: ast.AST, value: ast.AST | None, scope: int) -> None:
        if isinstance(t, ast.Name):
            self.binds[scope].setdefault(t.id, []).append(value)
        elif isinstance(t, ast.Attribute):
            self.attrs.setdefault(t.attr, []).append(value)
        elif isinstance(t, (ast.Tuple, ast.List)):
            vals = value.elts if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(t.elts) else None
            for i, e in enumerate(t.elts):
                self._bind_target(e, vals[i] if vals else None, scope)
        elif isinstance(t, ast.Starred):
            self._bind_target(t.value, None, scope)

    def _resolve(self, name: str, scope: int) -> int | None:
        """The scope that binds ``name`` seen from ``scope`` (its own, else the enclosing functions', else module)."""
        s: int | None = scope
        while s is not None:
            if name in self.binds.get(s, {}):
                return s
            s = self.parent.get(s)
        return None

    # URL-ness
    def has_hit(self, n: ast.AST) -> bool:
        a, b = self.span(n)
        return any(a <= s < b for s, _ in self.spans)

    def url(self, n: ast.AST | None, scope: int) -> str:
        if n is None:
            return NO
        if isinstance(n, ast.Constant):
            return YES if isinstance(n.value, str) and self.has_hit(n) else NO
        if isinstance(n, ast.JoinedStr):
            if any(isinstance(v, ast.Constant) for v in n.values) and self.has_hit(n) and not any(
                    isinstance(v, ast.FormattedValue) and self.has_hit(v.value) for v in n.values):
                return YES
            parts = [self.url(v.value, scope) for v in n.values if isinstance(v, ast.FormattedValue)]
            if self.has_hit(n):
                parts.append(YES)
            return _any(parts)
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Mod)):
            return _any([self.url(n.left, scope), self.url(n.right, scope)])
        if isinstance(n, ast.BoolOp):
            return _any(self.url(v, scope) for v in n.values)
        if isinstance(n, (ast.List, ast.Tuple)):
            return _any(self.url(v, scope) for v in n.elts)
        if isinstance(n, ast.IfExp):
            return _join([self.url(n.body, scope), self.url(n.orelse, scope)])
        if isinstance(n, ast.Call):
            f = n.func
            fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if (isinstance(f, ast.Attribute) and fname in _TRANSFORM_ATTRS) or fname in _TRANSFORM_NAMES:
                vals = [self.url(a, scope) for a in list(n.args) + [k.value for k in n.keywords]]
                if isinstance(f, ast.Attribute):
                    vals.append(self.url(f.value, scope))
                return _any(vals)
            return NO
        if isinstance(n, ast.Attribute):
            if isinstance(n.value, ast.Call) and self.url(n.value, scope) == YES:
                return YES  # urlparse(URL).netloc
            return self._named(("attr", n.attr), self.attrs.get(n.attr), scope_lookup=0)
        if isinstance(n, ast.Name):
            s = self._resolve(n.id, scope)
            if s is None:
                return NO
            return self._named((s, n.id), self._values(s, n.id), scope_lookup=s)
        if isinstance(n, ast.Starred):
            return self.url(n.value, scope)
        return NO

    def _values(self, s: int, name: str) -> list[ast.AST | None] | None:
        vals = list(self.binds[s][name])
        fn = self.fnode.get(s)
        if fn is not None:
            vals += self._param_values(fn, name)
        return vals

    def _named(self, key: tuple[object, str], vals: list[ast.AST | None] | None, scope_lookup: int) -> str:
        mk = (id(key[0]) if not isinstance(key[0], int) else key[0], key[1])
        if mk in self.memo:
            return self.memo[mk]
        if mk in self.busy:
            return SKIP
        if not vals:
            return NO
        self.busy.add(mk)
        res = _join(self.url(v, self.scope_of.get(id(v), scope_lookup)) if v is not None else NO for v in vals)
        self.busy.discard(mk)
        self.memo[mk] = res
        return res

    def _param_values(self, fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, name: str) -> list[ast.AST | None]:
        """What a parameter is bound to: the argument of every call of the function in this file (by name), and
        its default where a call leaves it out (or nobody here calls it)."""
        a = fn.args
        pos = a.posonlyargs + a.args
        names = [p.arg for p in pos]
        kwonly = [p.arg for p in a.kwonlyargs]
        if name not in names and name not in kwonly:
            return []
        defaults: dict[str, ast.AST] = dict(zip(names[len(names) - len(a.defaults):], a.defaults))
        defaults.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None})
        out: list[ast.AST | None] = []
        calls = self.calls_of.get(getattr(fn, "name", None) or "", []) if not isinstance(fn, ast.Lambda) else []
        if len(self.funcs.get(getattr(fn, "name", ""), [])) != 1:
            calls = []  # two functions of that name: which one a call reaches is not known
        for call, method in calls:
            shift = 1 if method and names and names[0] in ("self", "cls") else 0
            got: ast.AST | None | bool = False
            for i, arg in enumerate(call.args):
                if isinstance(arg, ast.Starred):
                    got = None
                    break
                if i + shift < len(names) and names[i + shift] == name:
                    got = arg
            for k in call.keywords:
                if k.arg is None:
                    got = None if got is False else got
                elif k.arg == name:
                    got = k.value
            if got is False:
                out.append(defaults.get(name))
            else:
                out.append(got)  # type: ignore[arg-type]
        if not calls:
            out.append(defaults.get(name))
        return out

    # sites
    def run(self) -> None:
        self.scope_of[id(self.tree)] = 0
        self._collect(self.tree, 0)
        self.parent: dict[int, int | None] = {0: None}
        self.fnode: dict[int, ast.AST] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                self.parent[id(node)] = self.scope_of.get(id(node), 0)
                self.fnode[id(node)] = node
        self.calls_of: dict[str, list[tuple[ast.Call, bool]]] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Name):
                    self.calls_of.setdefault(node.func.id, []).append((node, False))
                elif isinstance(node.func, ast.Attribute):
                    self.calls_of.setdefault(node.func.attr, []).append((node, True))
        docs = {id(st.value) for st in ast.walk(self.tree) if isinstance(st, ast.Expr)
                and isinstance(st.value, ast.Constant)}
        self.fa.prose_only = not any(
            isinstance(n, (ast.Constant, ast.JoinedStr)) and id(n) not in docs and self.has_hit(n)
            for n in ast.walk(self.tree))
        need_os = False
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call):
                continue
            scope = self.scope_of.get(id(node), 0)
            site = self._site(node, scope)
            if site is None:
                continue
            self.fa.sites.append(site)
            if site.action == "add":
                self.fa.edits += site.edits
                need_os = True
        if need_os and not self.imports_os:
            self.fa.edits.append(self._import_os())

    def _env(self, env: str) -> str:
        return f'os.environ["{env}"]'

    def _value(self, prefix: str, env: str) -> str:
        if not prefix:
            return self._env(env)
        return f'f"{prefix}{{os.environ[\'{env}\']}}"'

    def _pairs(self, hs: Sequence[Header]) -> str:
        return ", ".join(f'"{h}": {self._value(p, e)}' for h, p, e in hs)

    def _import_os(self) -> Edit:
        body = self.tree.body
        i = 0
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(
                body[0].value.value, str):
            i = 1
        while i < len(body) and isinstance(body[i], ast.ImportFrom) and body[i].module == "__future__":
            i += 1
        if i < len(body):
            at = self.starts[body[i].lineno - 1]
            return Edit(at, at, "import os\n")
        at = len(self.text)
        return Edit(at, at, ("" if self.text.endswith("\n") or not self.text else "\n") + "import os\n")

    def _where(self, node: ast.Call) -> str:
        f = self.src(node.func)
        return f"`{f}(...)`" if len(f) <= 60 else "this call"

    def _site(self, node: ast.Call, scope: int) -> AuthSite | None:
        f = node.func
        fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        want = describe(self.headers)
        line = node.lineno

        def manual(why: str) -> AuthSite:
            return AuthSite(self.path, line, "manual", f"add `{want}` to {self._where(node)} by hand: {why}")

        # a client built on the URL (base_url=...)
        for k in node.keywords:
            if k.arg in _BASE_KWS and self.url(k.value, scope) != NO:
                if self.url(k.value, scope) == AMBIG:
                    return manual(f"`{k.arg}` is this endpoint only on some paths")
                return self._client_ctor(node, fname, manual)
        if fname in _TRANSFORM_NAMES or (isinstance(f, ast.Attribute) and fname in _TRANSFORM_ATTRS
                                         and fname not in VERBS):
            return None
        if isinstance(f, ast.Attribute) and fname == "get" and self.src(f.value) in ("os.environ", "environ"):
            return None
        # the URL argument of a request
        url_arg, hdr_pos = None, None
        if fname in VERBS and fname not in ("request", "stream"):
            url_arg = node.args[0] if node.args else None
        elif fname in ("request", "stream"):
            url_arg = node.args[1] if len(node.args) > 1 else None
        elif fname == "Request":
            url_arg = node.args[0] if node.args and self.url(node.args[0], scope) != NO else (
                node.args[1] if len(node.args) > 1 else None)
            hdr_pos = 2
        for k in node.keywords:
            if k.arg == "url" and url_arg is None:
                url_arg = k.value
        if url_arg is not None and (fname in VERBS or fname == "Request"):
            u = self.url(url_arg, scope)
            if u == NO:
                return None
            if u == AMBIG:
                return manual("the URL is this endpoint only on some paths (a name also bound to something else)")
            if isinstance(f, ast.Attribute) and fname == "get" and isinstance(f.value, ast.Dict):
                return None
            return self._headers_kw(node, "headers", hdr_pos, manual)
        if fname == "urlopen" and node.args and self.url(node.args[0], scope) != NO:
            return manual("urlopen(URL) sends no headers: build `urllib.request.Request(URL, headers={...})` and "
                          "open that")
        # any other call given the URL: a request flymigrate does not know, or the file's own function
        args = list(node.args) + [k.value for k in node.keywords]
        if not any(self.url(a, scope) != NO for a in args):
            return None
        if fname in _INERT_NAMES or fname in _INERT_ATTRS:
            return None
        if isinstance(f, ast.Name) and f.id in self.funcs and len(self.funcs[f.id]) == 1:
            return None  # the file's own function: its parameter carries the URL to the request inside
        if isinstance(f, ast.Attribute) and fname in self.funcs and len(self.funcs[fname]) == 1:
            return None
        return manual("it is given the endpoint URL and flymigrate does not know how it sends requests")

    def _client_ctor(self, node: ast.Call, fname: str, manual) -> AuthSite:  # type: ignore[no-untyped-def]
        hs = self.headers
        if fname.endswith("OpenAI"):
            if len(hs) == 1 and hs[0][0].lower() == "authorization" and hs[0][1] == "Bearer ":
                # the SDK sends api_key as `Authorization: Bearer <api_key>` (openai-python _client.py auth_headers)
                env = hs[0][2]
                for k in node.keywords:
                    if k.arg in ("api_key", "openai_api_key"):
                        if self._reads(k.value, env):
                            return AuthSite(self.path, node.lineno, "has", "")  # filtered below
                        a, b = self.span(k.value)
                        return AuthSite(self.path, node.lineno, "add", f"`{self.src(node.func)}(...)` takes "
                                        f"api_key from ${env} (sent as `Authorization: Bearer`)",
                                        (Edit(a, b, self._env(env)),))
                if any(k.arg is None for k in node.keywords):
                    return manual("its arguments come through **kwargs")
                return self._add_kw(node, "api_key", self._env(env),
                                    f"`{self.src(node.func)}(...)` takes api_key from ${env} (sent as "
                                    "`Authorization: Bearer`)")
            return self._headers_kw(node, "default_headers", None, manual)
        if fname in _CLIENT_CTORS:
            return self._headers_kw(node, "headers", None, manual)
        return manual("a client built on the endpoint URL that flymigrate does not know: give it the header")

    def _add_kw(self, node: ast.Call, kw: str, value: str, what: str) -> AuthSite:
        last = max(list(node.args) + [k for k in node.keywords], key=lambda n: self.span(n)[1])
        end = self.span(last)[1]
        return AuthSite(self.path, node.lineno, "add", what, (Edit(end, end, f", {kw}={value}"),))

    def _headers_kw(self, node: ast.Call, kw: str, pos: int | None, manual) -> AuthSite:  # type: ignore[no-untyped-def]
        want = describe(self.headers)
        what = f"{self._where(node)} sends `{want}` (read from the environment by name)"
        val = next((k.value for k in node.keywords if k.arg == kw), None)
        if val is None and pos is not None and len(node.args) > pos and not any(
                isinstance(a, ast.Starred) for a in node.args[: pos + 1]):
            val = node.args[pos]
        if val is None:
            if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
                return manual(f"its {kw} may come through *args/**kwargs")
            return self._add_kw(node, kw, "{" + self._pairs(self.headers) + "}", what)
        if isinstance(val, ast.Constant) and val.value is None:
            a, b = self.span(val)
            return AuthSite(self.path, node.lineno, "add", what, (Edit(a, b, "{" + self._pairs(self.headers) + "}"),))
        if isinstance(val, ast.Dict):
            return self._merge_dict(node, val, what, manual)
        if isinstance(val, ast.Name):
            s = self._resolve(val.id, self.scope_of.get(id(node), 0))
            vals = self.binds.get(s, {}).get(val.id, []) if s is not None else []
            if vals and all(isinstance(v, ast.Dict) for v in vals):
                got = [self._missing(v) for v in vals]  # type: ignore[arg-type]
                if all(not m for m, _ in got) and all(not c for _, c in got):
                    return AuthSite(self.path, node.lineno, "has", "")
                if any(c for _, c in got):
                    return manual(f"`{val.id}` sends its own {got[0][1] or 'auth header'}; {want} must be there")
            a, b = self.span(val)
            # a dict everywhere it is bound: spread it; else (a parameter, maybe None) spread `var or {}`
            spread = val.id if vals and all(isinstance(v, ast.Dict) for v in vals) else f"({val.id} or {{}})"
            return AuthSite(self.path, node.lineno, "add", what,
                            (Edit(a, b, "{**" + spread + ", " + self._pairs(self.headers) + "}"),))
        a, b = self.span(val)
        return AuthSite(self.path, node.lineno, "add", what,
                        (Edit(a, b, "{**(" + self.src(val) + " or {}), " + self._pairs(self.headers) + "}"),))

    def _reads(self, n: ast.AST, env: str, depth: int = 0) -> bool:
        """``n`` reads ``env`` (after the URL step's renames), itself or through names bound to such reads
        (``KEY = os.environ["VLLM_API_KEY"]`` ... ``f"Bearer {KEY}"``)."""
        if reads_env(self.src(n), env, self.renames):
            return True
        if depth >= 3:
            return False
        scope = self.scope_of.get(id(n), 0)
        for x in ast.walk(n):
            if isinstance(x, ast.Name):
                s = self._resolve(x.id, self.scope_of.get(id(x), scope))
                vals = self.binds.get(s, {}).get(x.id, []) if s is not None else []
                if vals and all(v is not None and self._reads(v, env, depth + 1) for v in vals):
                    return True
        return False

    def _missing(self, d: ast.Dict) -> tuple[list[Header], str]:
        """(the target's headers the dict lacks, the name of one it sets to something else)."""
        have: dict[str, ast.AST] = {}
        for k, v in zip(d.keys, d.values):
            if isinstance(k, ast.Constant) and isinstance(k.value, str):
                have[k.value.lower()] = v
        missing: list[Header] = []
        clash = ""
        for h in self.headers:
            v = have.get(h[0].lower())
            if v is None:
                missing.append(h)
            elif not self._reads(v, h[2]):
                if h[1]:  # a bearer token in a header the app uses for its own key: they cannot share it
                    clash = h[0]
        return missing, clash

    def _merge_dict(self, node: ast.Call, d: ast.Dict, what: str, manual) -> AuthSite:  # type: ignore[no-untyped-def]
        missing, clash = self._missing(d)
        if clash:
            return manual(f"it sends its own {clash} header (the app's key?); {describe(self.headers)} must be there: "
                          "move the app's key to another header or drop it")
        if not missing:
            return AuthSite(self.path, node.lineno, "has", "")
        if d.values:
            end = self.span(d.values[-1])[1]
            return AuthSite(self.path, node.lineno, "add", what, (Edit(end, end, ", " + self._pairs(missing)),))
        a, _ = self.span(d)
        return AuthSite(self.path, node.lineno, "add", what, (Edit(a + 1, a + 1, self._pairs(missing)),))


# ------------------------------------------------------------------------------------------------ shell
_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S)


def _fenced_only(text: str) -> str:
    """``text`` with everything outside fenced code blocks blanked (same length, newlines kept: offsets hold)."""
    keep = [False] * len(text)
    for m in _FENCE.finditer(text):
        for i in range(m.start(2), m.end(2)):
            keep[i] = True
    return "".join(c if k or c == "\n" else " " for c, k in zip(text, keep))


_SH_ASSIGN = re.compile(r"^[ \t]*(?:export[ \t]+|local[ \t]+|readonly[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=", re.M)
_CURL = re.compile(r"(?<![\w./-])curl(?=[ \t])")
_OTHER_HTTP = re.compile(r"(?<![\w./-])(wget|xh)(?=[ \t])|(?:^|[;&|(]\s*)(http)(?=[ \t])", re.M)


def _shell(text: str, path: str, spans: list[tuple[int, int]], headers: Sequence[Header],
           renames: Sequence[tuple[str, str]], fa: FileAuth) -> None:
    want = describe(headers)
    starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(off: int) -> int:
        import bisect

        return bisect.bisect_right(starts, off) - 1 + 1

    def logical_end(off: int) -> int:
        i = text.find("\n", off)
        while i != -1 and text[:i].rstrip("\r").endswith("\\"):
            i = text.find("\n", i + 1)
        return len(text) if i == -1 else i

    # variables holding the URL: every assignment of the name must hold a hit
    vals: dict[str, list[bool]] = {}
    for m in _SH_ASSIGN.finditer(text):
        end = logical_end(m.end())
        vals.setdefault(m.group(1), []).append(any(m.end() <= s < end for s, _ in spans))
    yes = {n for n, v in vals.items() if all(v)}
    ambig = {n for n, v in vals.items() if any(v) and not all(v)}

    def uses(a: int, b: int, names: set[str]) -> bool:
        seg = text[a:b]
        return any(re.search(rf"\$\{{?{re.escape(n)}\b", seg) for n in names)

    for rx, kind in ((_CURL, "curl"), (_OTHER_HTTP, "other")):
        for m in rx.finditer(text):
            ls = text.rfind("\n", 0, m.start()) + 1
            before = text[ls:m.start()]
            if "#" in before and not re.search(r"['\"]", before):
                continue  # a comment
            end = logical_end(m.end())
            hit = any(m.end() <= s < end for s, _ in spans) or uses(m.end(), end, yes)
            amb = uses(m.end(), end, ambig)
            if not hit and not amb:
                continue
            line = line_of(m.start())
            if kind == "other":
                fa.sites.append(AuthSite(path, line, "manual", f"add `{want}` to this `{m.group(1) or m.group(2)}` command by hand"))
                continue
            if amb and not hit:
                fa.sites.append(AuthSite(path, line, "manual", f"add `{want}` to this curl by hand: its URL variable "
                                         "is this endpoint only on some paths"))
                continue
            seg = text[m.end():end]
            present = {h: re.search(rf"(?:-H|--header)[ \t=]*['\"]?{re.escape(h)}\s*:([^'\"\n]*)", seg, re.I)
                       for h, _, _ in headers}
            clash = [h for (h, p, e) in headers if present[h] and p and not reads_env(present[h].group(1), e, renames)]
            if clash:
                fa.sites.append(AuthSite(path, line, "manual", f"add `{want}` to this curl by hand: it sends its own "
                                         f"{clash[0]} header (the app's key?); move that to another header"))
                continue
            missing = [h for h in headers if not present[h[0]]]
            if not missing:
                fa.sites.append(AuthSite(path, line, "has", ""))
                continue
            if before.count("'") % 2 == 1:
                fa.sites.append(AuthSite(path, line, "manual", f"add `{want}` to this curl by hand: it is inside "
                                         "single quotes"))
                continue
            add = "".join(f' -H "{h}: {p}${e}"' for h, p, e in missing)
            fa.sites.append(AuthSite(path, line, "add", f"`curl` sends `{want}` (read from the environment by name)",
                                     (Edit(m.end(), m.end(), add),)))
            fa.edits.append(Edit(m.end(), m.end(), add))




def plan_sites(hits: Sequence[BaseUrlHit], texts: Sequence[tuple[str, str]], headers: Sequence[Header],
               renames: Sequence[tuple[str, str]] = ()) -> tuple[list[str], list[str]]:
    """The plan's lines for every file with this app's URL: ("will change" lines, "by hand" lines)."""
    if not headers:
        return [], []
    by_path: dict[str, list[BaseUrlHit]] = {}
    for h in hits:
        if h.kind != "fdaa":
            by_path.setdefault(h.path, []).append(h)
    text_of = dict(texts)
    adds: list[str] = []
    manual: list[str] = []
    configured: list[tuple[str, str, list[AuthSite]]] = []
    served: list[str] = []  # the client files whose requests get (or already send) the header
    want = describe(headers)
    for path in sorted(by_path):
        if path not in text_of:
            if is_client_code(path):  # code the scan did not keep (too big)
                first = min(h.line for h in by_path[path])
                manual.append(f"{path}:{first}: send `{want}` on its requests to the endpoint by hand (the file is "
                              "too big to read as client code)")
            continue
        fa = analyze(text_of[path], path, by_path[path], headers, renames)
        adds += [s.plan_line for s in fa.changes]
        if is_client_code(path, text_of[path]) == "config":
            configured.append((path, text_of[path], fa.manual))
        else:
            manual += [s.plan_line for s in fa.manual]
            if fa.changes or (not fa.manual and not fa.prose_only):
                served.append(text_of[path])
    for path, text, sites in configured:
        # `NAME=URL` that a client here reads (os.environ["NAME"], process.env.NAME) whose requests got the header:
        # nothing more to do; any other configured URL: the code that reads it is elsewhere
        lines = text.split("\n")
        for s in sites:
            m = re.match(r"\s*(?:export\s+)?[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?\s*[=:]", lines[s.line - 1])
            if m and any(env_read_pattern(m.group(1)).search(t) for t in served):
                continue
            manual.append(s.plan_line)
    return adds, manual


# ------------------------------------------------------------------------------------------------ JavaScript / TS
# A small scanner, not a parser: strings, template literals (with ${} nesting) and comments are skipped so brackets
# and commas are matched; only `fetch(url[, {...}])` is rewritten, everything else that uses the URL is by hand.
# Browser code (.jsx/.tsx, "use client") is never given a platform key: anyone could read it there.
_JS_DECL = re.compile(r"(?<![\w$.])(?:const|let|var)\s+([A-Za-z_$][\w$]*)(?:\s*:\s*[^=;\n]+?)?\s*=(?![=>])")
_JS_ASSIGN = re.compile(r"(?<![\w$.])([A-Za-z_$][\w$]*)\s*=(?![=>])")
_JS_FETCH = re.compile(r"(?<![\w$])(?:(?:window|globalThis|self)\s*\.\s*)?fetch\s*\(")
_JS_IDENT = re.compile(r"(?<![\w$.])[A-Za-z_$][\w$]*")
_JS_CALL = re.compile(r"([A-Za-z_$][\w$]*)\s*\(")
_JS_URL_CALLS = {"URL", "String", "replace", "replaceAll", "trim", "trimEnd", "concat", "join", "toString", "slice",
                 "encodeURIComponent", "encodeURI"}


def _js_mask(text: str) -> str:
    """``text`` with comments blanked and string / template contents replaced by ``_`` (quotes and ``${ }``
    expressions kept): the same length, so offsets hold. Brackets and commas left are code."""
    out = list(text)
    i, n = 0, len(text)
    stack: list[str] = []  # "`" while inside a template's text, "{" for a ${ } or a code brace inside one

    def blank(a: int, b: int, ch: str = " ") -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = ch

    while i < n:
        c = text[i]
        if stack and stack[-1] == "`":
            if c == "\\":
                blank(i, min(i + 2, n), "_")
                i += 2
                continue
            if c == "`":
                stack.pop()
                i += 1
                continue
            if text.startswith("${", i):
                stack.append("{")
                i += 2
                continue
            blank(i, i + 1, "_")
            i += 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j == -1 else j
            blank(i, j)
            i = j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j == -1 else j + 2
            blank(i, j)
            i = j
            continue
        if c in "'\"":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, min(j, n), "_")
            i = j + 1
            continue
        if c == "`":
            stack.append("`")
            i += 1
            continue
        if c == "{" and stack:
            stack.append("{")
        elif c == "}" and stack:
            stack.pop()
        i += 1
    return "".join(out)


def _js_args(mask: str, open_paren: int) -> tuple[list[tuple[int, int]], int] | None:
    """The top-level argument spans of the call whose ``(`` is at ``open_paren``, and the ``)`` offset."""
    depth = 0
    args: list[tuple[int, int]] = []
    start = open_paren + 1
    for i in range(open_paren, len(mask)):
        c = mask[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                if mask[start:i].strip():
                    args.append((start, i))
                return args, i
        elif c == "," and depth == 1:
            args.append((start, i))
            start = i + 1
    return None


def _js_top_keys(mask: str, a: int, b: int, text: str) -> list[tuple[str, int, int, int]]:
    """(key, key start, value start, value end) of an object literal ``mask[a:b]`` (``{`` at a, ``}`` at b-1);
    a spread or a computed key gives key ``...``."""
    out = []
    got = _js_args(mask, a)  # the same matcher: braces count as brackets
    if got is None:
        return out
    for s, e in got[0]:
        seg = mask[s:e]
        lead = len(seg) - len(seg.lstrip())
        body = text[s + lead: s + len(seg.rstrip())]  # the real text: quoted keys are blanked in the mask
        if not body:
            continue
        if body.startswith("..."):
            out.append(("...", s + lead, s + lead + 3, e))
            continue
        m = re.match(r"(['\"]?)([\w$-]+)\1\s*:", body)
        if m:
            out.append((m.group(2), s + lead, s + lead + m.end(), e))
        elif re.fullmatch(r"[A-Za-z_$][\w$]*", body):
            out.append((body, s + lead, s + lead, e))  # shorthand `{ headers }`
        else:
            out.append(("...", s + lead, s + lead, e))
    return out


def _js(text: str, path: str, spans: list[tuple[int, int]], headers: Sequence[Header],
        renames: Sequence[tuple[str, str]], fa: FileAuth) -> None:
    want = describe(headers)
    starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(off: int) -> int:
        import bisect

        return bisect.bisect_right(starts, off)

    browser = path.lower().endswith((".jsx", ".tsx")) or re.match(r"\s*['\"]use client['\"]", text) is not None
    mask = _js_mask(text)
    # the string literals of the original hold the hits; in the mask they are "_": look for hits in the text
    hit_at = [s for s, _ in spans]

    def holds_hit(a: int, b: int) -> bool:
        return any(a <= s < b for s in hit_at)

    # names bound to the URL: every binding of the name (declaration or assignment) must hold it
    def expr_end(i: int) -> int:
        depth = 0
        for k in range(i, len(mask)):
            c = mask[k]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                if depth == 0:
                    return k
                depth -= 1
            elif depth == 0 and (c == ";" or c == "," or (c == "\n" and mask[i:k].strip()
                                                           and not mask[i:k].rstrip().endswith(("+", "?", ":", "||",
                                                                                                 "??", "(", ",")))):
                return k
        return len(mask)

    binds: dict[str, list[tuple[int, int]]] = {}
    bound_at: set[int] = set()  # where a binding names its variable (not a use)
    for rx in (_JS_DECL, _JS_ASSIGN):
        for m in rx.finditer(mask):
            if rx is _JS_ASSIGN and mask[max(0, m.start() - 6): m.start()].rstrip().endswith(("const", "let", "var")):
                continue
            binds.setdefault(m.group(1), []).append((m.end(), expr_end(m.end())))
            bound_at.add(m.start(1))
    state: dict[str, str] = {}

    def url_of(a: int, b: int, seen: frozenset[str] = frozenset()) -> str:
        if any(c.group(1) not in _JS_URL_CALLS for c in _JS_CALL.finditer(mask, a, b)):
            return NO  # a call's result (a response, a client): not the URL itself
        if holds_hit(a, b):
            return YES
        vals = []
        for m in _JS_IDENT.finditer(mask, a, b):
            if m.group(0) in binds and m.group(0) not in seen:
                vals.append(name_url(m.group(0), seen | {m.group(0)}))
        return _any(vals) if vals else NO

    def name_url(name: str, seen: frozenset[str]) -> str:
        if name not in state:
            state[name] = _join(url_of(a, b, seen) for a, b in binds[name])
        return state[name]

    def value(prefix: str, env: str) -> str:
        return f"`{prefix}${{process.env.{env}}}`" if prefix else f"process.env.{env}"

    pairs = ", ".join(f'"{h}": {value(p, e)}' for h, p, e in headers)
    covered: list[tuple[int, int]] = []
    for m in _JS_FETCH.finditer(mask):
        got = _js_args(mask, m.end() - 1)
        if got is None or not got[0]:
            continue
        args, close = got
        u = url_of(*args[0])
        if u == NO:
            continue
        covered.append(args[0])
        line = line_of(m.start())

        def manual(why: str) -> None:
            fa.sites.append(AuthSite(path, line, "manual", f"add `{want}` to this fetch(...) by hand: {why}"))

        if browser:
            manual("this looks like browser code, where a platform key would be readable by anyone: call the "
                   "endpoint from your server instead")
            continue
        if u == AMBIG:
            manual("its URL is this endpoint only on some paths")
            continue
        what = f"`fetch(...)` sends `{want}` (read from process.env by name)"
        if len(args) == 1:
            end = args[0][1]
            fa.sites.append(AuthSite(path, line, "add", what, (Edit(end, end, f", {{ headers: {{ {pairs} }} }}"),)))
            continue
        a, b = args[1]
        seg = mask[a:b]
        lead = len(seg) - len(seg.lstrip())
        oa, ob = a + lead, a + len(seg.rstrip())
        if mask[oa] != "{" or mask[ob - 1] != "}":
            manual("its options are not an object literal (headers may be set elsewhere)")
            continue
        keys = _js_top_keys(mask, oa, ob, text)
        if any(k == "..." for k, *_ in keys):
            manual("its options spread another object (headers may come from there)")
            continue
        hk = next((x for x in keys if x[0] == "headers"), None)
        if hk is None:
            fa.sites.append(AuthSite(path, line, "add", what, (Edit(oa + 1, oa + 1, f" headers: {{ {pairs} }},"),)))
            continue
        _, ks, vs, ve = hk
        vseg = mask[vs:ve]
        vlead = len(vseg) - len(vseg.lstrip())
        va, vb = vs + vlead, vs + len(vseg.rstrip())
        if vs == ks:  # shorthand `{ headers }`
            fa.sites.append(AuthSite(path, line, "add", what,
                                     (Edit(ks, ve, f"headers: {{ ...headers, {pairs} }}"),)))
            continue
        if mask[va] == "{" and mask[vb - 1] == "}":
            inner = _js_top_keys(mask, va, vb, text)
            names = {k.lower(): (s, e) for k, s, _, e in inner}
            missing = []
            clash = ""
            for h, p, e in headers:
                if h.lower() in names:
                    s, e2 = names[h.lower()]
                    if not reads_env(text[s:e2], e, renames) and p:
                        clash = h
                else:
                    missing.append((h, p, e))
            if clash:
                manual(f"it sends its own {clash} header (the app's key?); move that to another header")
                continue
            if not missing:
                fa.sites.append(AuthSite(path, line, "has", ""))
                continue
            if "..." in names:
                manual("its headers spread another object (it may hold the header already)")
                continue
            add = ", ".join(f'"{h}": {value(p, e)}' for h, p, e in missing)
            fa.sites.append(AuthSite(path, line, "add", what, (Edit(va + 1, va + 1, f" {add},"),)))
            continue
        if re.fullmatch(r"[A-Za-z_$][\w$.]*", mask[va:vb]):
            fa.sites.append(AuthSite(path, line, "add", what,
                                     (Edit(va, vb, f"{{ ...{text[va:vb]}, {pairs} }}"),)))
            continue
        manual("its headers are built in a way flymigrate does not rewrite (a Headers object?)")
    for s in fa.sites:
        fa.edits += list(s.edits) if s.action == "add" else []
    # the URL used anywhere else in code (axios, a wrapper, a WebSocket): by hand, once per line
    decl_spans = [v for n, vs in binds.items() if name_url(n, frozenset({n})) != NO for v in vs]
    other_lines: set[int] = set()
    for m in _JS_IDENT.finditer(mask):
        name = m.group(0)
        if name in binds and name_url(name, frozenset({name})) != NO:
            at = m.start()
            if at in bound_at or any(a <= at < b for a, b in covered) or any(a <= at < b for a, b in decl_spans):
                continue
            ls = text.rfind("\n", 0, at) + 1
            if re.search(r"\bconsole\s*\.\s*\w+\s*\(", mask[ls:at]):
                continue  # logged, not requested
            other_lines.add(line_of(at))
    for s in spans:
        if not any(a <= s[0] < b for a, b in covered) and not any(a <= s[0] < b for a, b in decl_spans):
            other_lines.add(line_of(s[0]))
    handled = {x.line for x in fa.sites}
    for ln in sorted(other_lines - handled):
        fa.sites.append(AuthSite(path, ln, "manual", f"add `{want}` by hand to the request that uses the endpoint "
                                 "URL here (only fetch(...) is rewritten; read it from "
                                 + " and ".join(f"process.env.{e}" for _, _, e in headers) + ")"))
