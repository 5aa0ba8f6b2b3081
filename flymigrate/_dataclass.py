"""A start-up-cheap stand-in for :func:`dataclasses.dataclass` (the subset flymigrate uses).

Why: the standard decorator compiles source text with ``exec`` for every generated method (``__init__``,
``__repr__``, ``__eq__``, ``__hash__``, and for frozen classes ``__setattr__``/``__delattr__``): about a
millisecond per class, and ``flymigrate plan`` defines ~35 of them before it prints anything (issue 16 measured
the model's dataclasses at ~26 ms of a ~170 ms run). Here the methods are closures over the field names: no
compiling at import, the same behaviour at run time.

What it keeps from the standard library, so everything else keeps working unchanged: ``__dataclass_fields__``
holds real :class:`dataclasses.Field` objects, so :func:`dataclasses.replace`, :func:`dataclasses.fields`,
:func:`dataclasses.asdict` and :func:`dataclasses.is_dataclass` work; frozen instances raise
:class:`dataclasses.FrozenInstanceError`; ``__eq__``/``__hash__`` follow the standard rules (eq + frozen: hashable
by the field values; eq without frozen: unhashable; methods written in the class body are never replaced).
Supported: ``frozen``, ``eq``, ``repr``, ``init``, fields with ``default`` / ``default_factory`` / ``repr`` /
``compare`` / ``hash``, ``__post_init__``, dataclass base classes. Not supported (raises): ``order``, ``slots``,
``kw_only``, ``InitVar``. Type checkers see the standard decorator (the import is switched under
``TYPE_CHECKING`` by the modules using this one).
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, Field, FrozenInstanceError
from typing import Any

__all__ = ["dataclass", "field"]

field = dataclasses.field
_FIELD = dataclasses._FIELD  # type: ignore[attr-defined]  # the marker fields() filters on
_PARAMS = dataclasses._DataclassParams  # type: ignore[attr-defined]


def _is_classvar(annotation: object) -> bool:
    s = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    s = str(s)
    return s.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))


def _process(cls: type, *, init: bool, repr: bool, eq: bool, frozen: bool) -> type:  # noqa: A002
    fields: dict[str, Field[Any]] = {}
    for base in cls.__mro__[-1:0:-1]:  # dataclass bases first, as the standard library orders them
        base_fields = base.__dict__.get("__dataclass_fields__")
        if base_fields:
            fields.update(base_fields)
    own = cls.__dict__.get("__annotations__", {})
    for name, annotation in own.items():
        if _is_classvar(annotation):
            continue
        if "InitVar" in str(annotation):
            raise TypeError(f"{cls.__name__}.{name}: InitVar is not supported by flymigrate._dataclass")
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else field(default=value)
        f.name = name
        f.type = annotation
        f._field_type = _FIELD  # type: ignore[attr-defined]
        if isinstance(f.default, (list, dict, set)):
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: use default_factory")
        if isinstance(value, Field):
            if f.default is MISSING:
                if name in cls.__dict__:
                    delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        fields[name] = f
    names = tuple(fields)
    seen_default = False
    for n in names:
        f = fields[n]
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        if f.init and not has_default and seen_default:
            raise TypeError(f"non-default argument {n!r} follows default argument")
        seen_default = seen_default or (f.init and has_default)
    cls.__dataclass_fields__ = fields  # type: ignore[attr-defined]
    cls.__dataclass_params__ = _PARAMS(init, repr, eq, False, False, frozen)  # type: ignore[attr-defined]
    cls.__match_args__ = tuple(n for n in names if fields[n].init)  # type: ignore[attr-defined]

    def set_new(attr: str, fn: Any) -> None:
        if attr not in cls.__dict__:
            fn.__qualname__ = f"{cls.__qualname__}.{attr}"
            setattr(cls, attr, fn)

    if init:
        init_fields = tuple(fields[n] for n in names if fields[n].init)
        no_init = tuple(fields[n] for n in names if not fields[n].init)
        has_post = hasattr(cls, "__post_init__")

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            # compiled on the first instance, not at import: most classes are never built by one `plan` run,
            # and the ones that are (compare builds thousands of rows) get a straight-line __init__
            real = _compile_init(cls, init_fields, no_init, frozen, has_post)
            if cls.__dict__.get("__init__") is __init__:
                cls.__init__ = real  # type: ignore[misc]
            real(self, *args, **kwargs)

        set_new("__init__", __init__)

    if repr:
        repr_names = tuple(n for n in names if fields[n].repr)
        active: set[tuple[int, int]] = set()  # the standard library's recursion guard

        def __repr__(self: Any) -> str:
            key = (id(self), _thread_id())
            if key in active:
                return "..."
            active.add(key)
            try:
                body = ", ".join(f"{n}={getattr(self, n)!r}" for n in repr_names)
            finally:
                active.discard(key)
            return f"{type(self).__qualname__}({body})"

        set_new("__repr__", __repr__)

    cmp_names = tuple(n for n in names if fields[n].compare)
    if eq:
        def __eq__(self: Any, other: Any) -> Any:
            if other.__class__ is self.__class__:
                return all(getattr(self, n) == getattr(other, n) for n in cmp_names)
            return NotImplemented

        set_new("__eq__", __eq__)

    # __hash__: the standard library's table for unsafe_hash=False
    explicit_hash = "__hash__" in cls.__dict__ and not (cls.__dict__["__hash__"] is None and "__eq__" in cls.__dict__)
    if eq and frozen and not explicit_hash:
        hash_names = tuple(n for n in names if (fields[n].compare if fields[n].hash is None else fields[n].hash))

        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in hash_names))

        __hash__.__qualname__ = f"{cls.__qualname__}.__hash__"
        cls.__hash__ = __hash__  # type: ignore[method-assign]
    elif eq and not frozen and not explicit_hash:
        cls.__hash__ = None  # type: ignore[assignment]

    if frozen:
        frozen_names = frozenset(names)

        def __setattr__(self: Any, name: str, value: Any) -> None:
            if type(self) is cls or name in frozen_names:
                raise FrozenInstanceError(f"cannot assign to field {name!r}")
            super(cls, self).__setattr__(name, value)  # type: ignore[misc]

        def __delattr__(self: Any, name: str) -> None:
            if type(self) is cls or name in frozen_names:
                raise FrozenInstanceError(f"cannot delete field {name!r}")
            super(cls, self).__delattr__(name)  # type: ignore[misc]

        for attr, fn in (("__setattr__", __setattr__), ("__delattr__", __delattr__)):
            if attr in cls.__dict__:
                raise TypeError(f"Cannot overwrite attribute {attr} in class {cls.__name__}")
            fn.__qualname__ = f"{cls.__qualname__}.{attr}"
            setattr(cls, attr, fn)
    if not getattr(cls, "__doc__", None):
        cls.__doc__ = f"{cls.__name__}({', '.join(names)})"
    return cls


_HAS_FACTORY = object()


def _compile_init(cls: type, init_fields: tuple[Field[Any], ...], no_init: tuple[Field[Any], ...], frozen: bool,
                  has_post: bool) -> Any:
    """The same ``__init__`` the standard library writes (positional-or-keyword parameters, defaults,
    factories, ``object.__setattr__`` for frozen classes), compiled once."""
    glb: dict[str, Any] = {"__object_setattr": object.__setattr__, "__HAS_FACTORY": _HAS_FACTORY}
    params, body = ["self"], []

    def store(name: str, value: str) -> str:
        return f"__object_setattr(self, {name!r}, {value})" if frozen else f"self.{name} = {value}"

    for f in init_fields:
        n = f.name
        if f.default is not MISSING:
            glb[f"__dflt_{n}"] = f.default
            params.append(f"{n}=__dflt_{n}")
            body.append(store(n, n))
        elif f.default_factory is not MISSING:
            glb[f"__fact_{n}"] = f.default_factory
            params.append(f"{n}=__HAS_FACTORY")
            body.append(store(n, f"__fact_{n}() if {n} is __HAS_FACTORY else {n}"))
        else:
            params.append(n)
            body.append(store(n, n))
    for f in no_init:
        n = f.name
        if f.default is not MISSING:
            glb[f"__dflt_{n}"] = f.default
            body.append(store(n, f"__dflt_{n}"))
        elif f.default_factory is not MISSING:
            glb[f"__fact_{n}"] = f.default_factory
            body.append(store(n, f"__fact_{n}()"))
    if has_post:
        body.append("self.__post_init__()")
    src = f"def __init__({', '.join(params)}):\n" + "".join(f"    {b}\n" for b in body or ["pass"])
    ns: dict[str, Any] = {}
    exec(src, glb, ns)  # noqa: S102  # built from field names only, as the standard library does
    fn = ns["__init__"]
    fn.__qualname__ = f"{cls.__qualname__}.__init__"
    fn.__module__ = cls.__module__
    return fn


def _thread_id() -> int:
    import _thread

    return _thread.get_ident()


def _params_fit() -> bool:
    """The stand-in writes ``__dataclass_params__`` through a private constructor whose signature changed in
    Python 3.12 (match_args, kw_only, slots, weakref_slot were added): use it only where it has the shape this
    module was written and tested against; everywhere else the standard decorator is used, unchanged."""
    try:
        _PARAMS(True, True, True, False, False, False)
    except TypeError:
        return False
    return True


# True on 3.10 / 3.11; False from 3.12 on (tests/test_dataclass_shim.py runs the package on every installed Python)
FAST = _params_fit()


def dataclass(cls: type | None = None, /, *, init: bool = True, repr: bool = True, eq: bool = True,  # noqa: A002
              frozen: bool = False, **unsupported: Any) -> Any:
    if not FAST:
        return dataclasses.dataclass(cls, init=init, repr=repr, eq=eq, frozen=frozen, **unsupported)  # type: ignore[call-overload]
    if any(unsupported.values()):
        raise TypeError(f"flymigrate._dataclass does not support {sorted(k for k, v in unsupported.items() if v)}")

    def wrap(c: type) -> type:
        return _process(c, init=init, repr=repr, eq=eq, frozen=frozen)

    return wrap if cls is None else wrap(cls)
