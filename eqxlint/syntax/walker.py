"""One fast walk over a LibCST tree.

LibCST's own `module.visit()` costs nearly as much as the parse. This walker instead reads each
node's dataclass fields directly (skipping whitespace and punctuation, which no rule needs),
iteratively (so 5,000-deep expressions cannot raise RecursionError), and records only the nodes
whose types somebody asked for, as a flat list of (node, is_leave) events. The engine builds its
semantic context from that list and then replays it to the rules.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import libcst as cst

# Fields that hold only whitespace, comments or punctuation: never walked.
_TRIVIA_FIELDS = frozenset(
    {
        "lpar", "rpar", "comma", "semicolon", "colon", "equal", "dot", "lbracket", "rbracket",
        "lbrace", "rbrace", "leading_lines", "lines_after_decorators", "header", "footer",
        "newline", "trailing_whitespace", "indent", "first_line", "empty_lines", "operator",
        "star", "whitespace", "asynchronous", "quote", "start", "end", "posonly_ind",
        "whitespace_after_walrus", "whitespace_before_walrus",
    }
)

_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields_of(tp: type) -> tuple[str, ...]:
    names = tuple(
        f.name
        for f in dataclasses.fields(tp)
        if f.name not in _TRIVIA_FIELDS and not f.name.startswith("whitespace")
    )
    _FIELDS[tp] = names
    return names


def child_fields(tp: type) -> tuple[str, ...]:
    """The fields of a node type that the walk enters (whitespace/punctuation excluded)."""
    names = _FIELDS.get(tp)
    return names if names is not None else _fields_of(tp)


# type -> 1 (a LibCST node), 2 (a tuple/list of children), 0 (anything else). LibCST nodes are
# ABCs, so a per-type lookup is much cheaper than `isinstance(value, cst.CSTNode)`.
_KIND: dict = {}


def _kind(tp: type) -> int:
    k = 1 if issubclass(tp, cst.CSTNode) else 2 if tp in (tuple, list) else 0
    _KIND[tp] = k
    return k


def children(node: cst.CSTNode) -> list:
    """The child nodes the walk enters (whitespace/punctuation excluded), in document order."""
    out = []
    kinds = _KIND
    for name in child_fields(type(node)):
        value = getattr(node, name)
        k = kinds.get(type(value))
        if k is None:
            k = _kind(type(value))
        if k == 1:
            out.append(value)
        elif k == 2:
            for c in value:
                ck = kinds.get(type(c))
                if (ck if ck is not None else _kind(type(c))) == 1:
                    out.append(c)
    return out


_LEAVE = object()
_VISIT = object()
# A function's decorators, parameters (defaults, annotations) and return annotation are
# evaluated where the `def` (or `lambda`) runs, in the enclosing scope: their events come before
# the function's visit event, so that rules see them outside the function; the body comes inside.
_HEADERS = {cst.FunctionDef: ("decorators", "name", "params", "returns", "type_parameters"), cst.Lambda: ("params",)}


def walk(root: cst.CSTNode, want: frozenset) -> list:
    """Return [(node, is_leave)] for every node under `root` whose type is in `want`, in
    document order (a visit event before the node's children, a leave event after them)."""
    events: list = []
    append = events.append
    fields_cache = _FIELDS
    kinds = _KIND
    stack: list = [root]
    pop = stack.pop
    push = stack.append
    while stack:
        node = pop()
        if node is _LEAVE:
            append((pop(), True))
            continue
        if node is _VISIT:
            append((pop(), False))
            continue
        tp = type(node)
        header = _HEADERS.get(tp)
        if header is not None:
            if tp in want:
                push(node)
                push(_LEAVE)
            push(node.body)
            if tp in want:
                push(node)
                push(_VISIT)
            for name in reversed(header):
                value = getattr(node, name, None)
                if type(value) in (tuple, list):
                    for child in reversed(value):
                        push(child)
                elif value is not None:
                    push(value)
            continue
        if tp in want:
            append((node, False))
            push(node)
            push(_LEAVE)
        names = fields_cache.get(tp)
        if names is None:
            names = _fields_of(tp)
        # Children are pushed in reverse so that they pop in document order. This is
        # `children(node)` written out inline: `walk` visits every node of every file.
        for name in reversed(names):
            value = getattr(node, name)
            k = kinds.get(type(value))
            if k is None:
                k = _kind(type(value))
            if k == 1:
                push(value)
            elif k == 2:
                for child in reversed(value):
                    ck = kinds.get(type(child))
                    if ck is None:
                        ck = _kind(type(child))
                    if ck == 1:
                        push(child)
    return events


def walk_module(module: cst.CSTNode, want: frozenset) -> tuple[list, list]:
    """`walk(module, want)` plus, for a Module, the index in the event list where each top-level
    statement's events begin (used to locate a node's statement for its position)."""
    if type(module) is not cst.Module:
        return walk(module, want), []
    events: list = []
    bounds: list = []
    top = cst.Module in want
    if top:
        events.append((module, False))
    for stmt in module.body:
        bounds.append(len(events))
        events.extend(walk(stmt, want))
    if top:
        events.append((module, True))
    return events, bounds


def iter_subtree(root: cst.CSTNode, types: Iterable[type] | None = None, prune: tuple = ()):
    """Yield the nodes of a subtree (pre-order, same field order as `walk`), optionally only
    those of the given types. Nodes of a `prune` type below the root are yielded but not entered
    (e.g. nested functions, which rules analyse as scopes of their own)."""
    # isinstance() on LibCST's ABC node classes is slow: match by type, once per type.
    wanted = _matcher(tuple(types)) if types is not None else None
    pruned = _matcher(tuple(prune)) if prune else None
    stack = [root]
    while stack:
        node = stack.pop()
        tp = type(node)
        if wanted is None:
            yield node
        else:
            m = wanted.get(tp)
            if m is None:
                m = wanted[tp] = issubclass(tp, wanted["types"])
            if m:
                yield node
        if pruned is not None and node is not root:
            m = pruned.get(tp)
            if m is None:
                m = pruned[tp] = issubclass(tp, pruned["types"])
            if m:
                continue
        stack.extend(reversed(children(node)))


_MATCHERS: dict = {}


def _matcher(types: tuple) -> dict:
    """{node type: whether it is a subclass of `types`} (filled lazily), plus the key "types"."""
    m = _MATCHERS.get(types)
    if m is None:
        m = _MATCHERS[types] = {"types": types}
    return m
