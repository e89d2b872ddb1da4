"""Line/column positions computed for the smallest statement around a node, not the whole file
(LibCST's `PositionProvider` ranges, exactly)."""

from __future__ import annotations

import bisect
import re
from typing import Optional

import libcst as cst

_LINE_BREAK = re.compile(r"\r\n?|\n")  # LibCST's line breaks (its NEWLINE_RE)


def _all_fields(tp: type, _cache: dict = {}) -> tuple:
    names = _cache.get(tp)
    if names is None:
        import dataclasses

        names = _cache[tp] = tuple(f.name for f in dataclasses.fields(tp))
    return names


def _contains(root: cst.CSTNode, target: cst.CSTNode) -> bool:
    """Whether `target` is `root` or lies anywhere under it (every field, trivia included)."""
    node_base = cst.CSTNode
    stack = [root]
    while stack:
        node = stack.pop()
        if node is target:
            return True
        for name in _all_fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, node_base):
                stack.append(value)
            elif type(value) is tuple or type(value) is list:
                stack.extend(v for v in value if isinstance(v, node_base))
    return False


class LocalPositions:
    """LibCST's PositionProvider / WhitespaceInclusivePositionProvider, computed for the smallest
    statement around a node that can be placed, instead of the whole file.

    A statement that is a member of a block body starts at the beginning of a line, and LibCST's
    codegen of it depends only on the indentation of the blocks around it. So LibCST's own
    position-tracking codegen state is run over that one statement, with the enclosing blocks'
    indentation on its stack, starting at line 1; the text it produces is then looked up in the
    source. If it occurs exactly once, that is where the statement is, and every range is
    shifted by its line (columns are already exact). A statement whose text occurs more than
    once (a `return x` repeated in many methods) hands over to the statement around it, up to
    the top-level statement; a top-level statement that is itself repeated is placed by plain
    codegen of the statements before it. Nodes outside every top-level statement (the module
    itself, header and footer comments) fall back to the whole-file provider."""

    def __init__(self, ctx: object, inclusive: bool):
        self.ctx = ctx
        self.inclusive = inclusive
        self.ranges: dict = {}  # node -> (CodeRange, line shift), for the statements done so far
        self.done: set = set()  # ids of statements whose ranges are in `ranges`
        self._parents: dict = {}  # top-level index -> {id(node): parent} for that statement
        self._line_starts: Optional[list] = None
        self._starts: list = []  # (line, column) at the start of body[k], k < len(_starts)
        self._prefix = None  # CodegenState after header + body[:len(_starts) - 1]
        self._owner: Optional[dict] = None  # id(event node) -> top-level statement index
        self._full = None
        self._all_owner: Optional[dict] = None

    # ------------------------------------------------------------ placing by the statement's text
    def _parent_map(self, k: int) -> dict:
        """{id(node): parent} for the syntax nodes of `body[k]` (whitespace, comments and
        punctuation are not entered; a node among them is placed with its whole statement)."""
        parents = self._parents.get(k)
        if parents is None:
            from .walker import children

            parents = self._parents[k] = {}
            stack = [self.ctx.module.body[k]]
            while stack:
                node = stack.pop()
                for child in children(node):
                    parents[id(child)] = node
                    stack.append(child)
        return parents

    def _statements(self, node, k: int) -> list:
        """[(statement, indentation stack)] from the innermost block-body statement holding
        `node` out to the top-level statement `body[k]`; [] when `node` is not under it."""
        top = self.ctx.module.body[k]
        parents = self._parent_map(k)
        path = [node]
        while path[-1] is not top:
            parent = parents.get(id(path[-1]))
            if parent is None:
                return []
            path.append(parent)
        default = self.ctx.module.default_indent
        out = []
        indents: list = []  # of the IndentedBlocks on the path, innermost first
        for i, n in enumerate(path[:-1]):
            parent = path[i + 1]
            if type(parent) is cst.IndentedBlock:
                out.append((n, len(indents)))
                indents.append(default if parent.indent is None else parent.indent)
        chain = indents[::-1]  # outermost first
        out = [(stmt, chain[: len(chain) - depth]) for stmt, depth in out]
        out.append((top, []))
        return out

    def _line_of(self, offset: int) -> int:
        starts = self._line_starts
        if starts is None:
            starts = self._line_starts = [0] + [m.end() for m in _LINE_BREAK.finditer(self.ctx.source)]
        return bisect.bisect_right(starts, offset)

    def _place(self, stmt, chain: list) -> bool:
        """Codegen `stmt` with positions; keep the ranges if its text occurs once in the source."""
        provider, state = self._state()
        state.indent_tokens = list(chain)
        stmt._codegen(state)
        text = "".join(state.tokens)
        source = self.ctx.source
        at = source.find(text)
        if at < 0 or source.find(text, at + 1) >= 0 or (at > 0 and source[at - 1] not in "\r\n"):
            return False
        shift = self._line_of(at) - 1
        ranges = self.ranges
        for n, rng in provider._computed.items():
            ranges[n] = (rng, shift)
        self.done.add(id(stmt))
        return True

    def _state(self):
        from libcst.metadata.position_provider import (
            PositionProvider,
            PositionProvidingCodegenState,
            WhitespaceInclusivePositionProvider,
            WhitespaceInclusivePositionProvidingCodegenState,
        )

        module = self.ctx.module
        if self.inclusive:
            provider, state_cls = WhitespaceInclusivePositionProvider(), WhitespaceInclusivePositionProvidingCodegenState
        else:
            provider, state_cls = PositionProvider(), PositionProvidingCodegenState
        state = state_cls(default_indent=module.default_indent, default_newline=module.default_newline, provider=provider)
        return provider, state

    # ------------------------------------------------------------ placing by the text before it
    def _start(self, k: int):
        from libcst._nodes.internal import CodegenState

        module = self.ctx.module
        if self._prefix is None:
            self._prefix = CodegenState(default_indent=module.default_indent, default_newline=module.default_newline)
            self._line, self._col = 1, 0
            for h in module.header:
                h._codegen(self._prefix)
            self._advance()
        body = module.body
        while len(self._starts) <= k:
            i = len(self._starts)
            if i > 0:
                body[i - 1]._codegen(self._prefix)
                self._advance()
            self._starts.append((self._line, self._col))
        return self._starts[k]

    def _advance(self) -> None:
        text = "".join(self._prefix.tokens)
        self._prefix.tokens.clear()
        segments = _LINE_BREAK.split(text)
        if len(segments) == 1:
            self._col += len(text)
        else:
            self._line += len(segments) - 1
            self._col = len(segments[-1])

    def _compute(self, k: int) -> None:
        stmt = self.ctx.module.body[k]
        line, col = self._start(k)
        provider, state = self._state()
        state.line, state.column = line, col
        stmt._codegen(state)
        for n, rng in provider._computed.items():
            self.ranges[n] = (rng, 0)
        self.done.add(id(stmt))

    # ------------------------------------------------------------ lookup
    def _candidates(self, node, hint):
        owner = self._owner
        if owner is None:
            owner = self._owner = {}
            events = getattr(self.ctx, "events", None)
            bounds = getattr(self.ctx, "event_bounds", None)
            if events is not None and bounds:
                ends = list(bounds[1:]) + [len(events) - 1]
                for k, (a, b) in enumerate(zip(bounds, ends)):
                    for ev_node, _ in events[a:b]:
                        owner[id(ev_node)] = k
        seen = []
        for n in (node, hint):
            k = owner.get(id(n)) if n is not None else None
            if k is not None and k not in seen:
                seen.append(k)
        return seen

    def _locate(self, node, k: int):
        stmts = self._statements(node, k)
        if not stmts:
            if id(self.ctx.module.body[k]) not in self.done:
                self._compute(k)
            return self._found(node)
        for stmt, chain in stmts:
            if id(stmt) in self.done or self._place(stmt, chain):
                return self._found(node)
        self._compute(k)
        return self._found(node)

    def _found(self, node):
        hit = self.ranges.get(node)
        if hit is None:
            return None
        rng, shift = hit
        return rng.start.line + shift, rng.start.column, rng.end.line + shift, rng.end.column

    def get(self, node, hint=None):
        """(row, col, end_row, end_col) of `node`, or None."""
        hit = self._found(node)
        if hit is not None:
            return hit
        if self._full is None:
            try:  # the fast path uses LibCST internals (`_codegen`, `CodegenState`, `provider._computed`)
                hit = self._local(node, hint)
            except (AttributeError, ImportError, TypeError):  # a LibCST without them: public API
                hit = None
            if hit is not None:
                return hit
        return self._public(node)

    def _local(self, node, hint):
        for k in self._candidates(node, hint):
            hit = self._locate(node, k)
            if hit is not None:
                return hit
        if node is not self.ctx.module:
            # No hint (e.g. a report from `end_file`): map every node to its top-level statement
            # once, rather than searching the statements for each node.
            if self._all_owner is None:
                from .walker import iter_subtree

                body = self.ctx.module.body
                self._all_owner = {id(n): k for k, stmt in enumerate(body) for n in iter_subtree(stmt)}
            k = self._all_owner.get(id(node))
            if k is not None:
                hit = self._locate(node, k)
                if hit is not None:
                    return hit
        return None

    def _public(self, node):
        """`MetadataWrapper.resolve(PositionProvider)` over the whole module (public API)."""
        if self._full is None:
            from libcst.metadata import MetadataWrapper, PositionProvider, WhitespaceInclusivePositionProvider

            wrapper = MetadataWrapper(self.ctx.module, unsafe_skip_copy=True)
            self._full = wrapper.resolve(WhitespaceInclusivePositionProvider if self.inclusive else PositionProvider)
        rng = self._full.get(node)
        if rng is None:
            return None
        return rng.start.line, rng.start.column, rng.end.line, rng.end.column
