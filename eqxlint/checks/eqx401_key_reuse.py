"""EQX401 key-reuse: the same PRNG key consumed twice, or consumed in a loop without a split.

A domain of the shared flow engine (`eqxlint.semantics.flow`), run over each function body (and
the module body): the engine follows Python's control flow (branches joined, loops run twice,
`try`/`with`/`match`); the domain keeps, for each key expression (`key`, `self.key`,
`keys[0]`), the uses that reached this point. What is a key, and whether a call draws from the
key it is given, comes from the value layer (`ctx.values.key_args`): `jax.random` samplers,
`split` and `fold_in` draw; library calls are assumed to; a project function draws when its
summary says so, which the project decides (`requires=("consumes", callee, key)`). Findings are
collected over the whole body first, so that the allowed break (one draw applied on purpose to
aligned arrays, `_keys.same_draw`) can look at the whole function.
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..project.paths import is_test_path
from ..semantics.flow import Domain, FlowEngine
from ..syntax.walker import child_fields
from . import _keys as K

_NESTED = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
_COMPS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)
_MAX_USES = 4  # uses of one key kept per path


def _target_names(target, out: set) -> None:
    """Base names (and attribute/subscript tokens) a target binds."""
    if isinstance(target, cst.Name):
        out.add(target.value)
    elif isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            _target_names(el.value, out)
    elif isinstance(target, cst.StarredElement):
        _target_names(target.value, out)
    elif isinstance(target, (cst.Attribute, cst.Subscript)):
        tok = K.token(target)
        if tok is not None:
            out.add(tok)


def _assigned_in(stmts: list, out: set) -> set:
    """Every name (re)bound anywhere in these statements (not in nested scopes)."""
    for s in stmts:
        for node in K.iter_pruned(s):
            tp = type(node)
            if tp is cst.AssignTarget:
                _target_names(node.target, out)
            elif tp in (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor, cst.NamedExpr):
                _target_names(node.target, out)
            elif tp is cst.WithItem and node.asname is not None:
                _target_names(node.asname.name, out)
            elif tp is cst.Del:
                _target_names(node.target, out)
    return out


def _body(suite) -> list:
    if suite is None:
        return []
    if isinstance(suite, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        return list(suite.body)
    return [suite]


class _Use:
    """One use of a key: `kind` "draw" (a sampler or `split`), "fold_in", "pass" (given to
    another call) or "wrap" (bound for replay, `seed(model, key)`); `req` the condition under
    which it draws (a project callee), None when it surely does."""

    __slots__ = ("kind", "node", "what", "req", "callee", "arg", "loop", "iteration")

    def __init__(self, kind, node, what, req, callee, arg, loop=None, iteration=0):
        self.kind, self.node, self.what, self.req = kind, node, what, req
        self.callee, self.arg, self.loop, self.iteration = callee, arg, loop, iteration


class _Frame:
    """An enclosing loop: the names its body (re)binds, whether it runs once, which pass of the
    engine's two is running."""

    __slots__ = ("node", "assigned", "once", "label", "passes", "before")

    def __init__(self, node, assigned: set, once: bool, label: str, before=None):
        self.node, self.assigned, self.once, self.label = node, assigned, once, label
        self.passes = 0
        self.before = before


class KeyFlow(Domain):
    """EQX401's flow domain. A state maps a key token to the uses that reached this point
    (in order, a few at most), and `("alias", a)` to a second name of the same key."""

    def __init__(self, rule, frames: list):
        self.rule = rule
        self.ctx = rule.ctx
        self.frames = frames
        self.found: list = []  # ("reuse", use, prev, tok) | ("loop", use, frame, tok) | ("return", node, prev, tok)

    # ------------------------------------------------------------------ lattice
    def copy(self, state):
        return dict(state)

    def join(self, states):
        if len(states) == 1:
            return states[0]
        out = dict(states[0])
        for st in states[1:]:
            for k, v in st.items():
                old = out.get(k)
                if old is None:
                    out[k] = v
                elif old != v and type(k) is not tuple:
                    out[k] = (old + tuple(u for u in v if u not in old))[:_MAX_USES]
        return out

    def handler_entry(self, stmt, before, body):
        # `try: draw(key) except E: fallback(key)`: the fallback runs instead of the draw.
        return self.copy(before)

    # ------------------------------------------------------------------ statements
    def expr(self, node, state) -> None:
        self._expr(node, state)

    def assign(self, node, state) -> None:
        tp = type(node)
        if tp is cst.Assign:
            self._expr(node.value, state)
            for t in node.targets:
                self._bind(t.target, state)
            src = K.token(node.value)
            if src is not None and len(node.targets) == 1 and type(node.targets[0].target) is cst.Name:
                dst = node.targets[0].target.value
                if dst != src and (src in state or self.ctx.values.is_key(node.value)):
                    # `sub = key`: two names for one key value.
                    if src in state:
                        state[dst] = state[src]
                    state[("alias", dst)] = src
                    state[("alias", src)] = dst
        elif tp is cst.AnnAssign:
            if node.value is not None:
                self._expr(node.value, state)
                self._bind(node.target, state)
        else:
            self._expr(node.value, state)
            self._bind(node.target, state)

    def loop_target(self, stmt, state) -> None:
        self._next_pass(stmt)
        self._bind(stmt.target, state)

    def test(self, stmt, expr, state) -> None:
        if type(stmt) is cst.While:
            self._next_pass(stmt)

    def _next_pass(self, stmt) -> None:
        for f in reversed(self.frames):
            if f.node is stmt:
                f.passes += 1
                return

    def enter_loop(self, stmt, state) -> None:
        body = _body(stmt.body)
        assigned: set = set()
        if type(stmt) is cst.For:
            _target_names(stmt.target, assigned)
        _assigned_in(body, assigned)
        label = "`for` loop" if type(stmt) is cst.For else "`while` loop"
        self.frames.append(_Frame(stmt, assigned, self._runs_once(stmt, body), label, self.copy(state)))

    def _runs_once(self, stmt, body: list) -> bool:
        """`for _ in range(1)`, `for x in (a,)`, or a body that always leaves on its first pass."""
        if type(stmt) is cst.For and _once_iter(self.ctx, stmt.iter):
            return True
        if body:
            last = body[-1]
            if type(last) is cst.SimpleStatementLine and any(type(s) in (cst.Return, cst.Raise, cst.Break) for s in last.body):
                return True
        return False

    def leave_loop(self, stmt, state) -> None:
        frame = self.frames.pop()
        body = _body(stmt.body)
        if frame.once and body:
            last = body[-1]
            if type(last) is cst.SimpleStatementLine and any(type(s) in (cst.Return, cst.Raise) for s in last.body):
                # the body always leaves the function on its first pass: nothing flows on
                state.clear()
                state.update(frame.before)

    def enter_region(self, stmt, state):
        if type(stmt) is cst.With:
            for item in stmt.items:
                if item.asname is not None:
                    self._bind(item.asname.name, state)
        return None

    def returns(self, stmt, state) -> None:
        if stmt.value is not None:
            self._returned(stmt.value, state)

    def delete(self, stmt, state) -> None:
        self._bind(stmt.target, state)

    def definition(self, stmt, state) -> None:
        state.pop(stmt.name.value, None)

    # ------------------------------------------------------------------ expressions
    def _expr(self, expr, state) -> None:
        if expr is None or isinstance(expr, _NESTED):
            return
        tp = type(expr)
        if tp is cst.Call:
            self._expr(expr.func, state)
            qn = self.ctx.qualname(expr.func) if type(expr.func) in (cst.Name, cst.Attribute) else None
            if qn in K.SELECTS:
                # `lax.select(p, f(key), g(key))`: one alternative per element, as `a if p else b`.
                args = [a.value for a in expr.args]
                if args:
                    self._expr(args[0], state)
                branches = []
                for alt in args[1:]:
                    branch = dict(state)
                    self._expr(alt, branch)
                    branches.append(branch)
                if branches:
                    merged = self.join(branches)
                    state.clear()
                    state.update(merged)
                return
            for a in expr.args:
                self._expr(a.value, state)
            self._call(expr, qn, state)
            return
        if tp is cst.IfExp:
            self._expr(expr.test, state)
            a, b = dict(state), dict(state)
            self._expr(expr.body, a)
            self._expr(expr.orelse, b)
            merged = self.join([a, b])
            state.clear()
            state.update(merged)
            return
        if tp is cst.NamedExpr:
            self._expr(expr.value, state)
            self._bind(expr.target, state)
            return
        if tp in _COMPS:
            self._comprehension(expr, state)
            return
        for name in child_fields(tp):
            value = getattr(expr, name)
            if isinstance(value, cst.BaseExpression):
                self._expr(value, state)
            elif type(value) is tuple or type(value) is list:
                for child in value:
                    if isinstance(child, cst.CSTNode):
                        self._expr(child, state)
            elif isinstance(value, cst.CSTNode):
                self._expr(value, state)

    def _comprehension(self, comp, state) -> None:
        first = comp.for_in
        self._expr(first.iter, state)
        assigned: set = set()
        f = first
        while f is not None:
            _target_names(f.target, assigned)
            f = f.inner_for_in
        self.frames.append(_Frame(comp, assigned, _once_iter(self.ctx, first.iter), "comprehension"))
        self.frames[-1].passes = 1
        inner = dict(state)
        f = first
        while f is not None:
            self._bind(f.target, inner)
            if f is not first:
                self._expr(f.iter, inner)
            for cond in f.ifs:
                self._expr(cond.test, inner)
            f = f.inner_for_in
        if type(comp) is cst.DictComp:
            self._expr(comp.key, inner)
            self._expr(comp.value, inner)
        else:
            self._expr(comp.elt, inner)
        self.frames.pop()
        # Keys first consumed inside the comprehension stay consumed after it.
        for tok, uses in inner.items():
            if type(tok) is not tuple and tok not in state and K.base_name(tok) not in assigned:
                state[tok] = uses

    def _call(self, call: cst.Call, qn: Optional[str], state) -> None:
        uses = self.ctx.values.key_args(call)
        if not uses:
            return
        rule = self.rule
        random = qn is not None and qn.startswith(K.RANDOM_PREFIX)
        for arg, how in uses:
            if how is False:
                continue
            tok = K.token(arg.value)
            if tok is None:
                continue
            if random:
                kind = "fold_in" if qn == K.FOLD_IN else "draw"
                use = _Use(kind, call, f"`{self.ctx.code(call.func)}`", None, qn, arg)
            else:
                if rule.in_test:
                    continue  # tests pass one key to several functions on purpose, to compare results
                what = self.ctx.code(call.func)
                if len(what) > 40:
                    what = what[:37] + "..."
                callee = qn or what
                use = _Use("wrap" if qn in K.KEY_WRAPPERS else "pass", call, f"`{what}(...)`",
                           how if type(how) is tuple else None, callee, arg)
            self._consume(tok, use, state)

    def _consume(self, tok: str, use: _Use, state) -> None:
        frame = self._frame()
        if any(f.once and f.passes > 1 for f in self.frames):
            return  # the second pass over a loop that runs once
        if frame is not None:
            use.loop, use.iteration = frame.node, frame.passes
        prevs = state.get(tok, ())
        if prevs:
            same = [p for p in prevs if p.node is use.node]
            if same:
                # a use meeting itself: the loop around it does not rebind the key on every path
                if frame is not None:
                    self.found.append(("loop", use, frame, tok))
                return
            cands = [p for p in prevs if not (p.kind == use.kind and use.kind in ("fold_in", "wrap"))]
            if self.rule.in_test:
                code = self.ctx.code
                cands = [p for p in cands if not (p.kind == use.kind and code(p.node) == code(use.node))]
            if cands:
                self.found.append(("reuse", use, cands, tok))
            if len(prevs) < _MAX_USES:
                state[tok] = prevs + (use,)
            return
        state[tok] = (use,)
        partner = state.get(("alias", tok))
        if partner is not None and partner not in state:
            state[partner] = (use,)
        if use.kind in ("fold_in", "wrap"):
            return
        if frame is not None and K.base_name(tok) not in frame.assigned and tok not in frame.assigned:
            self.found.append(("loop", use, frame, tok))

    def _frame(self) -> Optional[_Frame]:
        for f in reversed(self.frames):
            if not f.once:
                return f
        return None

    def _bind(self, target, state) -> None:
        names: set = set()
        _target_names(target, names)
        if not names or not state:
            return
        for tok in list(state):
            if type(tok) is tuple:
                if tok[1] in names or state[tok] in names:
                    state.pop(tok, None)
                continue
            b = K.base_name(tok)
            for n in names:
                if tok == n or b == n or tok.startswith(n + ".") or tok.startswith(n + "["):
                    state.pop(tok, None)
                    break

    def _returned(self, value, state) -> None:
        """`return x, key` after `key` was drawn from: the caller gets back a used key."""
        if self.rule.scope_kind == "module":
            return
        items = [e.value for e in value.elements] if type(value) is cst.Tuple else [value]
        holders: set = set()
        for item in list(items):
            # `return State(x, rng_key)` / `state._replace(rng_key=key)`: a container of the key.
            if type(item) is cst.Call and type(item.func) in (cst.Name, cst.Attribute):
                last = item.func.attr.value if type(item.func) is cst.Attribute else item.func.value
                if K.CONTAINER_RE.search(last):
                    items.extend(a.value for a in item.args if not a.star)
                    holders.add(id(item))
        for item in items:
            tok = K.token(item)
            if tok is None or "." in tok:
                continue
            # the container returning the key is not an earlier use of it
            prevs = [p for p in state.get(tok, ()) if p.kind in ("draw", "pass") and id(p.node) not in holders]
            if prevs:
                self.found.append(("return", item, prevs, tok))


def _once_iter(ctx, it) -> bool:
    if type(it) in (cst.Tuple, cst.List) and len(it.elements) <= 1:
        return True
    if type(it) is cst.Call and ctx.qualname(it.func) == "range":
        args = [a.value for a in it.args]
        return len(args) == 1 and type(args[0]) is cst.Integer and int(args[0].value, 0) <= 1
    return False


class KeyReuse(Rule):
    code = "EQX401"
    options = {}

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self._reported: set = set()
        self._active = None
        self.in_test = is_test_path(ctx.path)
        self.scope_kind = "module"

    # ----------------------------------------------------------------- entry points
    def visit_Module(self, node: cst.Module) -> None:
        ctx = self.ctx
        self._active = bool(ctx.imports_module("jax") or ctx.imports_module("equinox"))
        if self._active:
            self._analyse(ctx.module_scope, node.body)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if self._active:
            self._analyse(self.ctx.scope, node.body)

    def visit_Lambda(self, node: cst.Lambda) -> None:
        # Only lambdas that are loop bodies (`lax.fori_loop(0, n, lambda i, x: ..., x)`).
        if self._active and self._loop_site(self.ctx.scope) is not None:
            self._analyse(self.ctx.scope, None, expr=node.body)

    # ----------------------------------------------------------------- the analysis
    def _analyse(self, scope, body, expr=None) -> None:
        ctx = self.ctx
        values = ctx.values
        if not any(values.key_args(c) for c in scope.calls):
            return
        frames: list = []
        site = self._loop_site(scope) if scope.kind != "module" else None
        if site is not None:
            # A `lax.fori_loop`/`scan`/`while_loop` body runs once per iteration: a key it does
            # not receive as an argument or derive itself is the same key every iteration.
            stmts = _body(body) if body is not None else [expr]
            assigned = _assigned_in(stmts, set(scope.params))
            what = f"function run as the `{K.short(site.qualname).replace('jax.lax.', 'lax.')}` body"
            frame = _Frame(site.node, assigned, False, what)
            frame.passes = 1
            frames.append(frame)
        self.scope_kind = scope.kind
        domain = KeyFlow(self, frames)
        state: dict = {}
        if expr is not None:
            domain.expr(expr, state)
        else:
            FlowEngine(domain).block(body, state)
        if domain.found:
            self._report(domain.found, scope)

    def _loop_site(self, scope):
        for site in scope.sites:
            if site.kind == "call" and site.qualname in K.LOOP_BODIES:
                call = site.node
                if isinstance(call, cst.Call) and self._is_body_arg(call, scope, site.qualname):
                    return site
        return None

    def _is_body_arg(self, call: cst.Call, scope, qn: str) -> bool:
        """`scope` is the body (not the cond) of the loop `call`."""
        pos = K.LOOP_BODIES[qn]
        args = [a for a in call.args if a.keyword is None and not a.star]
        arg = args[pos].value if len(args) > pos else None
        if arg is None:
            for a in call.args:
                if a.keyword is not None and a.keyword.value in ("body_fun", "f"):
                    arg = a.value
        if arg is None:
            return False
        if arg is scope.node:
            return True
        return any(s is scope for s in self.ctx.resolve_functions(arg, scope.parent))

    # ----------------------------------------------------------------- reports
    def _row(self, node) -> str:
        """The line cited for an earlier use or a loop (the one place rows are computed)."""
        pos = self.ctx.position(node)
        return str(pos[0]) if pos else "?"

    def _spell(self, qualname: str) -> str:
        """`jax.random.split` as this file writes it (`jr.split`, `random.split`, ...)."""
        return self.ctx.spell(qualname)

    def _refs(self, node) -> tuple:
        """The row `_row` cites (`Diagnostic.refs`: notebooks print it as cell and line)."""
        row = self._row(node)
        return (int(row),) if row != "?" else ()

    def _report(self, found: list, scope) -> None:
        facts = None
        for kind, node_or_use, other, tok in found:
            if kind == "reuse":
                use, prevs = node_or_use, other
                if id(use.node) in self._reported:
                    continue
                kept = []
                for prev in prevs:
                    if prev.callee == use.callee and prev.callee is not None:
                        if facts is None:
                            body = scope.node.body if scope.kind != "module" else scope.node
                            facts = K.FunctionFacts(self.ctx, body)
                        if K.same_draw(self.ctx, prev, use, facts):
                            continue
                    kept.append(prev)
                if not kept:
                    continue
                self._reported.add(id(use.node))
                for prev, requires in _alternatives(kept, use):
                    when = ""
                    if use.loop is not None and prev.loop is use.loop and prev.iteration < use.iteration:
                        when = " in the previous iteration"
                    self.report(
                        use.node,
                        f"PRNG key `{tok}` is used again by {use.what} after line {self._row(prev.node)}"
                        f"{when} already used it (by {prev.what}) with no split in between: both draw "
                        f"from the same random bits, so the values are identical or correlated. "
                        f"{K.split_advice(tok, self._spell(K.SPLIT))}",
                        requires=requires,
                        refs=self._refs(prev.node),
                    )
            elif kind == "loop":
                use, frame = node_or_use, other
                if id(use.node) in self._reported:
                    continue
                self._reported.add(id(use.node))
                never = frame.node is not None and K.base_name(tok) not in frame.assigned and tok not in frame.assigned
                how = (
                    "which never splits or rebinds it: every iteration draws the same random values"
                    if never else
                    "which does not split or rebind it on every path: iterations that skip the split draw the same random values"
                )
                self.report(
                    use.node,
                    f"PRNG key `{tok}` is used by {use.what} inside the {frame.label} at line "
                    f"{self._row(frame.node)}, {how}. "
                    f"{K.loop_advice(tok, self._spell(K.SPLIT), self._spell(K.FOLD_IN))}",
                    requires=_requires(use),
                    refs=self._refs(frame.node),
                )
            else:
                node, prevs = node_or_use, other
                if id(node) in self._reported:
                    continue
                self._reported.add(id(node))
                for prev, requires in _alternatives(prevs, None):
                    self.report(
                        node,
                        f"PRNG key `{tok}` is returned after line {self._row(prev.node)} already used it "
                        f"(by {prev.what}): the caller gets back a spent key, and a draw from it repeats "
                        f"bits already used. {K.return_advice(tok, self._spell(K.SPLIT))}",
                        requires=requires,
                        refs=self._refs(prev.node),
                    )


def _requires(*uses) -> Optional[tuple]:
    reqs = tuple(u.req for u in uses if u.req is not None)
    return reqs or None


def _alternatives(prevs: list, use) -> list:
    """`(prev, requires)` pairs of which exactly one holds on the project: the earlier use a
    finding cites is the first that surely draws, else the first project callee that does
    (the ones before it, conditions negated, did not)."""
    sure = next((p for p in prevs if p.req is None), None)
    if sure is not None:
        return [(sure, _requires(use) if use is not None else None)]
    out = []
    for i, prev in enumerate(prevs):
        reqs = (prev.req,) + ((use.req,) if use is not None and use.req is not None else ())
        reqs += tuple(("not", q.req) for q in prevs[:i])
        out.append((prev, reqs))
    return out
