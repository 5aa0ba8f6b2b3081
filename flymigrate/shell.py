"""A small quote-aware shell reader: enough structure to find a command and take it out whole.

It splits a POSIX shell command line (or a whole script) into lists (items separated by ``;``, ``&`` and newlines),
and-or lists (pipelines joined by ``&&`` / ``||``), pipelines (commands joined by ``|`` / ``|&``) and commands
(simple commands, or ``( ... )`` subshells read recursively). Quotes (``'...'``, ``"..."``), backslash escapes,
``$(...)``, ``$((...))``, ``${...}``, backticks, comments and here-documents are respected: an operator inside them
is not an operator. Every node keeps its span in the original text, so an edit touches only what it removes.

Reserved words (``if``, ``then``, ``do``, ``{``, ...) are not parsed as compound commands: they stay words at the
front of a simple command (``then ldconfig`` is the command ``ldconfig`` behind the prefix ``then``), which is all a
removal needs. Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # type checkers see the standard decorator
    from dataclasses import dataclass, field
else:  # start-up time: no exec per generated method (flymigrate/_dataclass.py)
    from ._dataclass import dataclass, field


class ShellSyntaxError(ValueError):
    """The text is not shell this reader can take apart (an unclosed quote or parenthesis)."""


@dataclass
class Word:
    start: int
    end: int
    text: str  # as written (quotes kept)


@dataclass
class Command:
    start: int
    end: int
    words: list[Word] = field(default_factory=list)
    sub: ShList | None = None  # a ( ... ) subshell


@dataclass
class Pipeline:
    start: int
    end: int
    commands: list[Command]
    bang: bool = False


@dataclass
class AndOr:
    start: int
    end: int
    pipelines: list[Pipeline]
    ops: list[str]  # between the pipelines: "&&" | "||"


@dataclass
class Item:
    andor: AndOr
    sep: str  # ";" | "&" | "\n" | ";;" | ""
    sep_end: int  # end of the separator (== andor.end when there is none)


@dataclass
class ShList:
    start: int
    end: int
    items: list[Item]


RESERVED_PREFIX = frozenset({"if", "then", "else", "elif", "do", "while", "until", "{", "!", "time"})


def is_prefix_word(word: str) -> bool:
    """A reserved word in front of a command, or a case pattern (``gpu)``, ``*)``)."""
    return word in RESERVED_PREFIX or (word.endswith(")") and not word.startswith(("$(", "`", "((")) and
                                       "(" not in word)
OPENERS = frozenset({"then", "else", "do", "{"})
CLOSERS = frozenset({"fi", "done", "else", "elif", "}", "esac"})
_WS = " \t"


class _Reader:
    def __init__(self, s: str) -> None:
        self.s = s
        self.n = len(s)
        self.heredocs: list[tuple[str, bool]] = []  # (delimiter, strip tabs) waiting for the next newline
        self.depth = 0  # open ( subshells: outside one, `)` ends a case pattern (`gpu)`), a word

    # ---- low level: skipping balanced constructs
    def _skip_single(self, i: int) -> int:
        j = self.s.find("'", i + 1)
        if j < 0:
            raise ShellSyntaxError("unclosed single quote")
        return j + 1

    def _skip_double(self, i: int) -> int:
        s, i = self.s, i + 1
        while i < self.n:
            c = s[i]
            if c == "\\":
                i += 2
            elif c == '"':
                return i + 1
            elif c == "$" and i + 1 < self.n and s[i + 1] in "({":
                i = self._skip_dollar(i)
            elif c == "`":
                i = self._skip_backtick(i)
            else:
                i += 1
        raise ShellSyntaxError("unclosed double quote")

    def _skip_backtick(self, i: int) -> int:
        s, i = self.s, i + 1
        while i < self.n:
            if s[i] == "\\":
                i += 2
            elif s[i] == "`":
                return i + 1
            else:
                i += 1
        raise ShellSyntaxError("unclosed backtick")

    def _skip_dollar(self, i: int) -> int:
        """``$(...)``, ``$((...))`` or ``${...}`` starting at ``$``; returns the index after its close."""
        s = self.s
        close = ")" if s[i + 1] == "(" else "}"
        opener = s[i + 1]
        depth = 0
        i += 1
        while i < self.n:
            c = s[i]
            if c == "\\":
                i += 2
                continue
            if c == "'" and close == ")":
                i = self._skip_single(i)
                continue
            if c == '"':
                i = self._skip_double(i)
                continue
            if c == "`":
                i = self._skip_backtick(i)
                continue
            if c == "$" and i + 1 < self.n and s[i + 1] in "({":
                i = self._skip_dollar(i)
                continue
            if c == "#" and close == ")" and (s[i - 1] in " \t\n(;&|"):
                j = s.find("\n", i)
                i = self.n if j < 0 else j
                continue
            if c == opener:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        raise ShellSyntaxError(f"unclosed ${opener}")

    def _skip_ws(self, i: int, newlines: bool = False) -> int:
        s = self.s
        while i < self.n:
            c = s[i]
            if c in _WS:
                i += 1
            elif c == "\\" and i + 1 < self.n and s[i + 1] == "\n":
                i += 2
            elif newlines and c == "\n":
                i = self._newline(i)
            elif newlines and c == "#":
                j = s.find("\n", i)
                i = self.n if j < 0 else j
            else:
                break
        return i

    def _newline(self, i: int) -> int:
        """Consume the newline at ``i`` and any here-document bodies it starts."""
        i += 1
        while self.heredocs:
            delim, strip = self.heredocs.pop(0)
            while i < self.n:
                j = self.s.find("\n", i)
                line = self.s[i:] if j < 0 else self.s[i:j]
                i = self.n if j < 0 else j + 1
                if (line.lstrip("\t") if strip else line) == delim:
                    break
        return i

    # ---- words
    def _word(self, i: int) -> int:
        s = self.s
        start = i
        while i < self.n:
            c = s[i]
            if c in _WS or c == "\n" or c in ";|" or (c == "&" and not (i + 1 < self.n and s[i + 1] == ">")):
                break
            if c == ")" and self.depth > 0:
                break
            if c == "(" and i > start and s[i - 1] in "=@?*+!":  # a=(1 2), extglob
                depth = 0
                while i < self.n:
                    if s[i] == "(":
                        depth += 1
                    elif s[i] == ")":
                        depth -= 1
                        if depth == 0:
                            i += 1
                            break
                    i += 1
                continue
            if c == "(":
                break
            if c == "\\":
                i += 2
            elif c == "'":
                i = self._skip_single(i)
            elif c == '"':
                i = self._skip_double(i)
            elif c == "`":
                i = self._skip_backtick(i)
            elif c == "$" and i + 1 < self.n and s[i + 1] in "({":
                i = self._skip_dollar(i)
            elif c in "<>":
                i += 1
                while i < self.n and s[i] in "<>&|-":
                    i += 1
                if s[start:i] in ("<<", "<<-"):
                    return i  # here-document operator: its delimiter is the next word
            elif c == "&":  # &> / &>>
                i += 1
            else:
                i += 1
        return min(i, self.n)

    # ---- grammar
    def parse_list(self, i: int, in_group: bool) -> tuple[ShList, int]:
        s = self.s
        start = i = self._skip_ws(i, newlines=True)
        items: list[Item] = []
        while i < self.n:
            i = self._skip_ws(i, newlines=True)
            if i >= self.n:
                break
            if s[i] == ")":
                if in_group:
                    break
                raise ShellSyntaxError("unmatched )")
            if s[i] == ";":  # an empty command (`;;` of a case arm, or a stray `;`)
                j = i + 2 if s.startswith(";;", i) else i + 1
                if items:
                    last = items[-1]
                    items[-1] = Item(last.andor, (last.sep + s[i:j]) if last.sep != "\n" else s[i:j], j)
                i = j
                continue
            ao, i = self.parse_andor(i, in_group)
            j = self._skip_ws(i)
            sep, sep_end = "", i
            if j < self.n and s[j] in ";&\n":
                if s.startswith(";;", j):
                    sep, sep_end = ";;", j + 2
                elif s[j] == "\n":
                    sep = "\n"
                    sep_end = self._newline(j)  # here-document bodies belong to the separator
                else:
                    sep, sep_end = s[j], j + 1
                i = sep_end
            else:
                i = j
                if i < self.n and s[i] == "#":
                    pass  # the comment is skipped by _skip_ws at the top of the loop
                elif i < self.n and not (s[i] == ")" and in_group):
                    raise ShellSyntaxError(f"unexpected {s[i]!r}")
            items.append(Item(ao, sep, sep_end))
        end = items[-1].sep_end if items else start
        return ShList(start, end, items), i

    def parse_andor(self, i: int, in_group: bool) -> tuple[AndOr, int]:
        s = self.s
        pipes = [None]  # type: ignore[list-item]
        p, i = self.parse_pipeline(i, in_group)
        pipes = [p]
        ops: list[str] = []
        while True:
            j = self._skip_ws(i)
            if s.startswith("&&", j) or s.startswith("||", j):
                ops.append(s[j:j + 2])
                j = self._skip_ws(j + 2, newlines=True)
                p, i = self.parse_pipeline(j, in_group)
                pipes.append(p)
            else:
                break
        return AndOr(pipes[0].start, pipes[-1].end, pipes, ops), i

    def parse_pipeline(self, i: int, in_group: bool) -> tuple[Pipeline, int]:
        s = self.s
        i = self._skip_ws(i)
        start = i
        bang = False
        if s.startswith("!", i) and i + 1 < self.n and s[i + 1] in _WS:
            bang = True
            i = self._skip_ws(i + 1)
        cmds: list[Command] = []
        c, i = self.parse_command(i, in_group)
        cmds.append(c)
        while True:
            j = self._skip_ws(i)
            if j < self.n and s[j] == "|" and not s.startswith("||", j):
                j += 2 if s.startswith("|&", j) else 1
                j = self._skip_ws(j, newlines=True)
                c, i = self.parse_command(j, in_group)
                cmds.append(c)
            else:
                break
        return Pipeline(start, cmds[-1].end, cmds, bang), i

    def parse_command(self, i: int, in_group: bool) -> tuple[Command, int]:
        s = self.s
        i = self._skip_ws(i)
        start = i
        if i < self.n and s[i] == "(" and not s.startswith("((", i):
            self.depth += 1
            sub, j = self.parse_list(i + 1, True)
            self.depth -= 1
            j = self._skip_ws(j, newlines=True)
            if j >= self.n or s[j] != ")":
                raise ShellSyntaxError("unclosed (")
            cmd = Command(start, j + 1, [], sub)
            i = j + 1
            # redirections after the subshell
            while True:
                k = self._skip_ws(i)
                if k < self.n and s[k] in "<>0123456789&" and not s.startswith("&&", k) and \
                        not (s[k] == "&" and not s.startswith("&>", k)):
                    e = self._word(k)
                    if e == k:
                        break
                    cmd.words.append(Word(k, e, s[k:e]))
                    cmd.end = i = e
                else:
                    break
            return cmd, i
        if s.startswith("((", i):  # arithmetic command: one word to its close
            depth, j = 0, i
            while j < self.n:
                if s[j] == "(":
                    depth += 1
                elif s[j] == ")":
                    depth -= 1
                    if depth == 0:
                        j += 1
                        break
                j += 1
            else:
                raise ShellSyntaxError("unclosed ((")
            return Command(start, j, [Word(i, j, s[i:j])]), j
        words: list[Word] = []
        pending_heredoc = False
        while i < self.n:
            c = s[i]
            if c in ";|\n" or (c == "&" and not s.startswith("&>", i)) or (c == ")" and self.depth > 0):
                break
            if c == "#" and (i == 0 or s[i - 1] in " \t\n;&|()"):
                j = s.find("\n", i)
                i = self.n if j < 0 else j
                break
            if c == "(":
                raise ShellSyntaxError("unexpected (")
            e = self._word(i)
            if e == i:
                raise ShellSyntaxError(f"unexpected {c!r}")
            w = Word(i, e, s[i:e])
            words.append(w)
            if pending_heredoc:
                self.heredocs.append((unquote(w.text), pending_heredoc == "-"))  # type: ignore[comparison-overlap]
                pending_heredoc = False
            elif w.text.startswith("<<") and not w.text.startswith("<<<"):
                rest = w.text[2:]
                strip = rest.startswith("-")
                rest = rest[1:] if strip else rest
                if rest:
                    self.heredocs.append((unquote(rest), strip))
                else:
                    pending_heredoc = "-" if strip else True  # type: ignore[assignment]
            i = self._skip_ws(e)
        end = words[-1].end if words else start
        return Command(start, end, words), i


def parse(text: str) -> ShList:
    """The list of commands in ``text``; raises ShellSyntaxError when it cannot be taken apart safely."""
    r = _Reader(text)
    try:
        lst, i = r.parse_list(0, False)
    except RecursionError:  # thousands of nested $( or ( : not something to take apart
        raise ShellSyntaxError("nested too deeply") from None
    if r._skip_ws(i, newlines=True) < len(text):
        raise ShellSyntaxError("trailing text")
    return lst


def unquote(word: str) -> str:
    """A word's value for matching (quotes and backslashes removed; expansions left as written)."""
    if "'" not in word and '"' not in word and "\\" not in word:
        return word
    out = []
    i = 0
    while i < len(word):
        c = word[i]
        if c == "'":
            j = word.find("'", i + 1)
            j = len(word) if j < 0 else j
            out.append(word[i + 1:j])
            i = j + 1
        elif c == '"':
            i += 1
        elif c == "\\" and i + 1 < len(word):
            if word[i + 1] != "\n":
                out.append(word[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


_ASSIGN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_WRAPPERS = frozenset({"sudo", "exec", "command", "nohup", "env", "time"})
SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh"})


def command_words(cmd: Command) -> tuple[int, list[Word]]:
    """(index of the first word after reserved words, the words from the command name on) of a simple command:
    reserved words, ``VAR=value`` assignments and wrappers (sudo, exec, env, nohup) are skipped."""
    ws = cmd.words
    k = 0
    while k < len(ws) and is_prefix_word(ws[k].text):
        k += 1
    first = k
    while k < len(ws):
        t = ws[k].text
        if _ASSIGN_RE.match(t):
            k += 1
        elif unquote(t) in _WRAPPERS:
            k += 1
            while k < len(ws) and ws[k].text.startswith("-"):
                k += 1
        else:
            break
    return first, [w for w in ws[k:] if not re.match(r"^\d*[<>]", w.text)]


def shell_script_word(cmd: Command) -> Word | None:
    """The quoted script of ``sh -c '...'`` / ``bash -lc "..."``, when the command is one (a single quoted word)."""
    if len(cmd.words) < 3 or not any(w.text.startswith("-") and "c" in w.text for w in cmd.words):
        return None
    _first, ws = command_words(cmd)
    if len(ws) < 3 or unquote(ws[0].text).rsplit("/", 1)[-1] not in SHELLS:
        return None
    for k in range(1, len(ws) - 1):
        t = ws[k].text
        if not t.startswith("-"):
            return None
        if t.startswith("--") or "c" not in t:
            continue
        script = ws[k + 1].text
        if len(script) >= 2 and script[0] == "'" and script.find("'", 1) == len(script) - 1:
            return ws[k + 1]
        if len(script) >= 2 and script[0] == '"':
            try:
                if _Reader(script)._skip_double(0) == len(script):
                    return ws[k + 1]
            except ShellSyntaxError:
                return None
        return None
    return None


# ------------------------------------------------------------------ removal


Pred = Callable[[Command, str], "str | None"]  # (command, source text) -> why it goes, or None


@dataclass
class Removal:
    text: str | None  # the new text, None when nothing at all is left
    reasons: list[str]


def remove_commands(text: str, pred: Pred) -> Removal:
    """Take out every simple command ``pred`` names, whole and-or items at a time, treating a removed command as
    one that succeeded: ``shim || fallback`` goes entirely, ``shim | tee x`` goes entirely, ``A && shim && B``
    becomes ``A && B``, ``shim && exec X`` becomes ``exec X``, ``A || shim`` becomes ``A || true``; a body that
    would be left empty (``then shim; fi``) gets ``true``. Raises ShellSyntaxError on text it cannot parse."""
    lst = parse(text)
    reasons: list[str] = []
    new = _rw_list(text, lst, pred, reasons)
    if not reasons:
        return Removal(text, [])
    if new is None:
        return Removal(None, reasons)
    return Removal(text[:lst.start] + new + text[lst.end:], reasons)


def _first_word(text: str) -> str:
    m = re.match(r"\s*(\S+)", text)
    return m.group(1) if m else ""


def _last_word(text: str) -> str:
    m = re.search(r"(\S+)\s*$", text)
    return m.group(1).rstrip(";") if m else ""


def _rw_list(text: str, lst: ShList, pred: Pred, reasons: list[str]) -> str | None:
    """The list's new text (from lst.start to lst.end), or None if every item went."""
    n0 = len(reasons)
    outs: list[str | None] = [rewrite_andor(text, it.andor, pred, reasons) for it in lst.items]
    if len(reasons) == n0:
        return text[lst.start:lst.end]
    kept: list[tuple[int, str]] = []  # (item index, new item text incl. separator and trailing space)
    for k, (it, new) in enumerate(zip(lst.items, outs)):
        nxt_start = lst.items[k + 1].andor.start if k + 1 < len(lst.items) else lst.end
        tail = text[it.andor.end:nxt_start]  # separator, spaces, comments up to the next item
        if new is None:
            prev = _last_word(kept[-1][1].rstrip().rstrip(";&").rstrip()) if kept else ""
            nxt = _first_word(text[nxt_start:lst.end]) if k + 1 < len(lst.items) else ""
            if prev in OPENERS and (nxt in CLOSERS or not nxt):
                kept.append((k, "true" + tail))
            continue
        kept.append((k, new + tail))
    if not kept:
        return None
    out = "".join(t for _k, t in kept)
    # the last item lost its follower: drop a dangling `;` (a dangling `&` stays: it backgrounds the item)
    if kept[-1][0] != len(lst.items) - 1:
        stripped = out.rstrip()
        if stripped.endswith(";") and not stripped.endswith(";;"):
            stripped = stripped[:-1].rstrip()
        out = stripped + ("\n" if text[lst.start:lst.end].endswith("\n") else "")
    return out


def _rw_pipeline(text: str, p: Pipeline, pred: Pred, reasons: list[str], skip_to: int | None = None) -> str | None:
    """None: the pipeline holds a removed command (it counts as having succeeded); else its new text."""
    start = skip_to if skip_to is not None else p.start
    changed = False
    parts: list[tuple[int, int, str]] = []  # span edits
    for c in p.commands:
        if c.sub is not None:
            inner = _rw_list(text, c.sub, pred, reasons)
            if inner is None:
                return None if not p.bang else "! true"
            if inner != text[c.sub.start:c.sub.end]:
                parts.append((c.sub.start, c.sub.end, inner))
                changed = True
            continue
        why = pred(c, text)
        if why:
            reasons.append(why)
            return None if not p.bang else "! true"
        sw = shell_script_word(c)
        if sw is not None:
            q = sw.text[0]
            body = sw.text[1:-1]
            try:
                sub = remove_commands(body, pred)
            except ShellSyntaxError:
                continue
            if sub.reasons:
                reasons.extend(sub.reasons)
                if sub.text is None:
                    return None if not p.bang else "! true"
                parts.append((sw.start, sw.end, q + sub.text + q))
                changed = True
    seg = text[start:p.end]
    if not changed:
        return seg
    for a, b, rep in sorted(parts, reverse=True):
        seg = seg[: a - start] + rep + seg[b - start:]
    return seg


def rewrite_andor(text: str, ao: AndOr, pred: Pred, reasons: list[str]) -> str | None:
    n0 = len(reasons)
    prefix = ""
    skip_to = None
    first = ao.pipelines[0]
    if first.commands and first.commands[0].sub is None and first.commands[0].words and not first.bang:
        ws = first.commands[0].words
        k = 0
        while k < len(ws) and is_prefix_word(ws[k].text):
            k += 1
        if 0 < k < len(ws):
            prefix = text[first.start:ws[k].start]
            skip_to = ws[k].start
    news = [_rw_pipeline(text, p, pred, reasons, skip_to if i == 0 else None) for i, p in enumerate(ao.pipelines)]
    if len(reasons) == n0:
        return text[ao.start:ao.end]
    parts: list[tuple[str | None, str]] = []
    for i, new in enumerate(news):
        op = ao.ops[i - 1] if i else None
        if not parts:  # nothing kept so far: the status so far is "succeeded", with no side effects
            if op == "||":
                continue  # true || X: X never ran
            if new is not None:
                parts.append((None, new))
            continue
        if new is None:
            if op == "&&" or parts[-1] == ("||", "true"):
                continue  # X && true == X
            parts.append(("||", "true"))  # X || true: keep X's effects, and its success
            continue
        parts.append((op, new))
    if not parts:
        return (prefix + "true") if prefix else None
    return prefix + parts[0][1] + "".join(f" {op} {t}" for op, t in parts[1:])
