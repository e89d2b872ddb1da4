"""EQX401 key-reuse: the same PRNG key consumed twice, or consumed in a loop without a split.

A small forward flow analysis per function body (and the module body): statements are walked in
order, `if`/`else`/`match` arms are exclusive and merged afterwards, an arm that ends in
`return`/`raise`/`continue`/`break` does not flow on, loops are checked for keys consumed in
their body that the body never rebinds. Nested functions, lambdas and classes get their own
analysis (or none); this is a per-scope check, never a second pass over the file.
"""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from ..core.rule import Rule
from ..syntax.walker import child_fields, iter_subtree
from . import _keys as K

_NESTED = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
_COMPS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)
_TERMINATORS = (cst.Return, cst.Raise, cst.Continue, cst.Break)


def _iter_pruned(root):
    """Pre-order nodes under `root`, not descending into nested functions, lambdas, classes."""
    return iter_subtree(root, prune=_NESTED)


def _body(suite) -> list:
    if suite is None:
        return []
    if isinstance(suite, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        return list(suite.body)
    return [suite]


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


class _Use:
    __slots__ = ("kind", "node", "what")

    def __init__(self, kind: str, node, what: str):
        self.kind = kind  # "fold_in" | "draw" (sampler/split) | "pass" (given to another call)
        self.node = node
        self.what = what


class _Frame:
    """An enclosing loop: the names its body (re)binds each iteration."""

    __slots__ = ("node", "assigned", "once", "label")

    def __init__(self, node, assigned: set, once: bool, label: str):
        self.node = node
        self.assigned = assigned
        self.once = once
        self.label = label


class KeyReuse(Rule):
    code = "EQX401"
    options = {}

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self._reported: set = set()
        self._active = None
        self._uses_random = None
        self.key_params: set = set()

    # ----------------------------------------------------------------- entry points
    def visit_Module(self, node: cst.Module) -> None:
        ctx = self.ctx
        if not (ctx.imports_module("jax") or ctx.imports_module("equinox")):
            self._active = False
            return
        self._active = True
        self._analyse(ctx.module_scope, list(node.body), None)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if not self._active:
            return
        self._analyse(self.ctx.scope, _body(node.body), node.params)

    def visit_Lambda(self, node: cst.Lambda) -> None:
        # Only lambdas that are loop bodies (`lax.fori_loop(0, n, lambda i, x: ..., x)`).
        if self._active and self._loop_site(self.ctx.scope) is not None:
            self._analyse(self.ctx.scope, [node.body], node.params)

    # ----------------------------------------------------------------- set-up
    def _analyse(self, scope, stmts: list, params: Optional[cst.Parameters]) -> None:
        ctx = self.ctx
        interesting = False
        for call in scope.calls:
            if K.key_taking(K.random_qualname(ctx, call.func)):
                interesting = True
                break
            for a in call.args:
                if a.keyword is not None and a.keyword.value in K.KEY_KEYWORDS and isinstance(a.value, cst.Name):
                    interesting = True
                    break
            if interesting:
                break
        key_params = self._key_params(scope, params)
        if not interesting and not key_params:
            return
        self.key_params = key_params
        self.in_test = K.is_test_path(ctx.path)
        self.keys = self._key_names(stmts, params)
        self.frames: list = []
        state: Optional[dict] = {}
        site = self._loop_site(scope)
        if site is not None:
            # A `lax.fori_loop`/`scan`/`while_loop` body runs once per iteration: a key it does
            # not receive as an argument or derive itself is the same key every iteration.
            assigned: set = set(scope.params)
            for stmt in stmts:
                for node in K.iter_pruned(stmt):
                    if isinstance(node, cst.AssignTarget):
                        _target_names(node.target, assigned)
                    elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
                        _target_names(node.target, assigned)
                    elif isinstance(node, (cst.For, cst.CompFor)):
                        _target_names(node.target, assigned)
                    elif isinstance(node, cst.NamedExpr):
                        _target_names(node.target, assigned)
            what = f"function run as the `{K.short(site.qualname).replace('jax.lax.', 'lax.')}` body"
            self.frames.append(_Frame(site.node, assigned, False, what))
        if stmts and isinstance(stmts[0], cst.BaseExpression):
            self._expr(stmts[0], state)
            return
        self._block(stmts, state)

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

    def _key_params(self, scope, params) -> set:
        """Parameters named like PRNG keys (`key`, `rng_key`, `dropout_key`, ...) in a file that
        uses `jax.random`, excluding dunder/container methods (`__getitem__(self, key)`)."""
        if params is None or self._uses_random is False:
            return set()
        if self._uses_random is None:
            ctx = self.ctx
            self._uses_random = any(
                v == "jax.random" or v.startswith("jax.random.") for v in ctx.aliases.values()
            ) or "jax.random." in ctx.source
            if not self._uses_random:
                return set()
        name = scope.name or ""
        if name.startswith("__") and name != "__call__" and name != "__init__" or name in K.CONTAINER_METHODS:
            return set()
        out = set()
        for p in list(params.params) + list(params.kwonly_params) + list(params.posonly_params):
            n = p.name.value
            if K.STRICT_KEY_PARAM_RE.match(n):
                ann = self.ctx.code(p.annotation.annotation) if p.annotation is not None else ""
                if ann and re.search(r"\b(str|int|Hashable|Any|tuple|Tuple|Callable|Sequence)\b", ann):
                    continue
                out.add(n)
        if not out:
            return out
        # Evidence that these are PRNG keys: this function draws random numbers itself, or hands
        # the name to a function of this file whose parameter in that place is key-named.
        ctx = self.ctx
        if any(K.key_taking(K.random_qualname(ctx, c.func)) for c in scope.calls):
            return out
        confirmed = set()
        for call in scope.calls:
            targets = None
            for i, a in enumerate(call.args):
                if a.star or not isinstance(a.value, cst.Name) or a.value.value not in out:
                    continue
                if targets is None:
                    try:
                        targets = ctx.resolve_functions(call.func, scope)
                    except Exception:
                        targets = []
                for t in targets:
                    tparams = [n for n in t.params if n not in ("self", "cls")]
                    if a.keyword is not None:
                        pname = a.keyword.value if a.keyword.value in t.params else None
                    else:
                        pos = sum(1 for b in call.args[:i] if b.keyword is None and not b.star)
                        pname = tparams[pos] if pos < len(tparams) else None
                    if pname and K.STRICT_KEY_PARAM_RE.match(pname):
                        confirmed.add(a.value.value)
        return confirmed

    def _key_names(self, stmts: list, params) -> set:
        """Names (and attribute/index tokens) in this scope that hold PRNG keys."""
        ctx = self.ctx
        keys: set = set(self.key_params)
        strong: set = set()  # used as the key of a jax.random call
        non_key: set = set()  # bound from something that is clearly not a key
        annotated: set = set()
        weak_misuse: set = set()
        if params is not None:
            for p in list(params.params) + list(params.kwonly_params) + list(params.posonly_params):
                ann = p.annotation
                if ann is not None and K.KEY_ANNOTATION_RE.search(ctx.code(ann.annotation)):
                    keys.add(p.name.value)
                    annotated.add(p.name.value)
        for stmt in stmts:
            for node in _iter_pruned(stmt):
                if isinstance(node, cst.Call):
                    qn = K.random_qualname(ctx, node.func)
                    if K.key_taking(qn):
                        tok = K.token(K.key_arg(node))
                        if tok is not None:
                            keys.add(tok)
                            strong.add(tok)
                        continue
                    if self._sort_like(node) or self._not_key_keyword_call(node):
                        continue
                    for a in node.args:
                        if a.keyword is not None and a.keyword.value in K.KEY_KEYWORDS:
                            tok = K.token(a.value)
                            if tok is not None and "." not in tok:
                                keys.add(tok)
                elif isinstance(node, cst.Assign):
                    if self._is_key_value(node.value, keys):
                        for t in node.targets:
                            out: set = set()
                            _target_names(t.target, out)
                            keys |= out
                    elif isinstance(node.value, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString, cst.Integer, cst.Float)):
                        for t in node.targets:
                            _target_names(t.target, non_key)
                elif isinstance(node, cst.Subscript):
                    # `table[key]`: a dictionary key, not a PRNG key.
                    for el in node.slice:
                        if isinstance(el.slice, cst.Index) and isinstance(el.slice.value, cst.Name):
                            weak_misuse.add(el.slice.value.value)
                elif isinstance(node, cst.Comparison):
                    if isinstance(node.left, cst.Name) and any(
                        isinstance(c.operator, (cst.In, cst.NotIn, cst.Equal, cst.NotEqual)) and not isinstance(c.comparator, cst.Name) or isinstance(c.operator, (cst.In, cst.NotIn))
                        for c in node.comparisons
                    ):
                        weak_misuse.add(node.left.value)
                elif isinstance(node, (cst.For, cst.CompFor)):
                    if self._is_key_value(node.iter, keys):
                        _target_names(node.target, keys)
                    else:
                        _target_names(node.target, non_key)
        if params is not None and {"query", "queries", "value", "values", "q", "v"} & {
            p.name.value for p in list(params.params) + list(params.kwonly_params) + list(params.posonly_params)
        }:
            # Attention code: `key` is the key tensor, `key=key` an attention argument.
            keys = {k for k in keys if k in strong or k in annotated}
        keys = {k for k in keys if k not in self.key_params or k in strong or k not in weak_misuse}
        return {k for k in keys if k in strong or K.base_name(k) not in non_key}

    def _is_key_value(self, expr, keys: set) -> bool:
        ctx = self.ctx
        while isinstance(expr, cst.Subscript):
            expr = expr.value
        if isinstance(expr, cst.Call):
            qn = K.random_qualname(ctx, expr.func)
            return qn is not None and (qn in K.KEY_MAKERS_ALL)
        tok = K.token(expr)
        return tok is not None and tok in keys

    def _not_key_keyword_call(self, call: cst.Call) -> bool:
        """`key=` here is unlikely a PRNG key: a container update, or an attention call."""
        func = call.func
        last = func.attr.value if isinstance(func, cst.Attribute) else (func.value if isinstance(func, cst.Name) else "")
        if last and (K.NON_CONSUMING_NAME_RE.search(last) or (isinstance(func, cst.Attribute) and K.STORE_METHOD_RE.match(last))):
            return True
        kws = {a.keyword.value for a in call.args if a.keyword is not None}
        return bool(kws & {"value", "values", "query", "queries", "inputs_kv"})

    def _sort_like(self, call: cst.Call) -> bool:
        func = call.func
        qn = self.ctx.qualname(func)
        if qn in K.SORT_KEY_CALLS:
            return True
        if isinstance(func, cst.Attribute) and func.attr.value in K.SORT_KEY_METHODS:
            return True
        name = func.attr.value if isinstance(func, cst.Attribute) else (func.value if isinstance(func, cst.Name) else "")
        return name in ("dict", "DictKey", "GetAttrKey", "SequenceKey", "FlattenedIndexKey", "field")

    # ----------------------------------------------------------------- statements
    def _block(self, stmts: list, state: Optional[dict]) -> Optional[dict]:
        for stmt in stmts:
            if state is None:
                return None
            state = self._stmt(stmt, state)
        return state

    def _stmt(self, stmt, state: dict) -> Optional[dict]:
        if isinstance(stmt, cst.SimpleStatementLine):
            return self._block(list(stmt.body), state)
        if isinstance(stmt, cst.Assign):
            self._expr(stmt.value, state)
            for t in stmt.targets:
                self._bind(t.target, state)
            src = K.token(stmt.value)
            if src is not None and src in self.keys and len(stmt.targets) == 1 and isinstance(stmt.targets[0].target, cst.Name):
                # `sub = key`: two names for one key value.
                dst = stmt.targets[0].target.value
                if dst != src:
                    if src in state:
                        state[dst] = state[src]
                    state[("alias", dst)] = src
                    state[("alias", src)] = dst
            return state
        if isinstance(stmt, cst.AnnAssign):
            if stmt.value is not None:
                self._expr(stmt.value, state)
                self._bind(stmt.target, state)
            return state
        if isinstance(stmt, cst.AugAssign):
            self._expr(stmt.value, state)
            self._bind(stmt.target, state)
            return state
        if isinstance(stmt, cst.Expr):
            self._expr(stmt.value, state)
            return state
        if isinstance(stmt, (cst.Return, cst.Raise)):
            if isinstance(stmt, cst.Return) and stmt.value is not None:
                self._expr(stmt.value, state)
                self._returned(stmt.value, state)
            elif isinstance(stmt, cst.Raise) and stmt.exc is not None:
                self._expr(stmt.exc, state)
            return None
        if isinstance(stmt, (cst.Continue, cst.Break)):
            return None
        if isinstance(stmt, cst.Del):
            self._bind(stmt.target, state)
            return state
        if isinstance(stmt, cst.Assert):
            self._expr(stmt.test, state)
            return state
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            state.pop(stmt.name.value, None)
            return state
        if isinstance(stmt, cst.If):
            self._expr(stmt.test, state)
            a = self._block(_body(stmt.body), dict(state))
            orelse = stmt.orelse
            if orelse is None:
                b = dict(state)
            elif isinstance(orelse, cst.If):
                b = self._stmt(orelse, dict(state))
            else:
                b = self._block(_body(orelse.body), dict(state))
            return _merge(a, b)
        if isinstance(stmt, (cst.For, cst.While)):
            return self._loop(stmt, state)
        if isinstance(stmt, cst.Try) or type(stmt).__name__ == "TryStar":
            after = self._block(_body(stmt.body), dict(state))
            if stmt.orelse is not None and after is not None:
                after = self._block(_body(stmt.orelse.body), after)
            for h in stmt.handlers:
                after = _merge(after, self._block(_body(h.body), dict(state)))
            if stmt.finalbody is not None:
                if after is None:
                    self._block(_body(stmt.finalbody.body), dict(state))
                    return None
                after = self._block(_body(stmt.finalbody.body), after)
            return after
        if isinstance(stmt, cst.With):
            for item in stmt.items:
                self._expr(item.item, state)
                if item.asname is not None:
                    self._bind(item.asname.name, state)
            return self._block(_body(stmt.body), state)
        if isinstance(stmt, cst.Match):
            self._expr(stmt.subject, state)
            out = None
            arms = 0
            for case in stmt.cases:
                arms += 1
                out = _merge(out, self._block(_body(case.body), dict(state))) if arms > 1 else self._block(_body(case.body), dict(state))
            return _merge(out, dict(state))
        return state  # pass, import, global, ...

    def _loop(self, stmt, state: dict) -> Optional[dict]:
        if isinstance(stmt, cst.For):
            self._expr(stmt.iter, state)
            label = "`for` loop"
        else:
            self._expr(stmt.test, state)
            label = "`while` loop"
        body = _body(stmt.body)
        assigned: set = set()
        if isinstance(stmt, cst.For):
            _target_names(stmt.target, assigned)
        for s in body:
            for node in _iter_pruned(s):
                if isinstance(node, cst.AssignTarget):
                    _target_names(node.target, assigned)
                elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
                    _target_names(node.target, assigned)
                elif isinstance(node, (cst.For, cst.CompFor)):
                    _target_names(node.target, assigned)
                elif isinstance(node, cst.NamedExpr):
                    _target_names(node.target, assigned)
                elif isinstance(node, cst.WithItem) and node.asname is not None:
                    _target_names(node.asname.name, assigned)
                elif isinstance(node, cst.Del):
                    _target_names(node.target, assigned)
        once = self._runs_once(stmt, body)
        self.frames.append(_Frame(stmt, assigned, once, label))
        inner = dict(state)
        if isinstance(stmt, cst.For):
            self._bind(stmt.target, inner)
        end = self._block(body, inner)
        self.frames.pop()
        out = _merge(state, end)
        if stmt.orelse is not None and out is not None:
            out = self._block(_body(stmt.orelse.body), out)
        return out

    def _runs_once(self, stmt, body: list) -> bool:
        if isinstance(stmt, cst.For):
            it = stmt.iter
            if isinstance(it, cst.Call) and self.ctx.qualname(it.func) == "range":
                args = [a.value for a in it.args]
                if len(args) == 1 and isinstance(args[0], cst.Integer) and int(args[0].value, 0) <= 1:
                    return True
            if isinstance(it, (cst.Tuple, cst.List)) and len(it.elements) <= 1:
                return True
        # A body that always leaves on its first pass.
        if body:
            last = body[-1]
            if isinstance(last, cst.SimpleStatementLine) and any(isinstance(s, (cst.Return, cst.Raise, cst.Break)) for s in last.body):
                return True
        return False

    # ----------------------------------------------------------------- bindings
    def _bind(self, target, state: dict) -> None:
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

    # ----------------------------------------------------------------- expressions
    def _expr(self, expr, state: dict) -> None:
        if expr is None or isinstance(expr, _NESTED):
            return
        if isinstance(expr, cst.Call):
            self._expr(expr.func, state)
            if isinstance(expr.func, (cst.Name, cst.Attribute)) and self.ctx.qualname(expr.func) in K.SELECTS:
                # `lax.select(p, f(key), g(key))`: one alternative per element, as `a if p else b`.
                args = [a.value for a in expr.args]
                if args:
                    self._expr(args[0], state)
                merged = None
                for alt in args[1:]:
                    branch = dict(state)
                    self._expr(alt, branch)
                    merged = branch if merged is None else _merge(merged, branch)
                if merged is not None:
                    state.clear()
                    state.update(merged)
                return
            for a in expr.args:
                self._expr(a.value, state)
            self._call(expr, state)
            return
        if isinstance(expr, cst.IfExp):
            self._expr(expr.test, state)
            a = dict(state)
            b = dict(state)
            self._expr(expr.body, a)
            self._expr(expr.orelse, b)
            merged = _merge(a, b)
            state.clear()
            state.update(merged)
            return
        if isinstance(expr, cst.NamedExpr):
            self._expr(expr.value, state)
            self._bind(expr.target, state)
            return
        if isinstance(expr, _COMPS):
            self._comprehension(expr, state)
            return
        tp = type(expr)
        names = child_fields(tp)
        for name in names:
            value = getattr(expr, name)
            if isinstance(value, cst.BaseExpression):
                self._expr(value, state)
            elif type(value) is tuple or type(value) is list:
                for child in value:
                    if isinstance(child, cst.CSTNode):
                        self._expr(child, state)
            elif isinstance(value, cst.CSTNode):
                self._expr(value, state)

    def _comprehension(self, comp, state: dict) -> None:
        first = comp.for_in
        self._expr(first.iter, state)
        assigned: set = set()
        f = first
        once = isinstance(first.iter, (cst.Tuple, cst.List)) and len(first.iter.elements) <= 1
        if isinstance(first.iter, cst.Call) and self.ctx.qualname(first.iter.func) == "range":
            args = [a.value for a in first.iter.args]
            once = len(args) == 1 and isinstance(args[0], cst.Integer) and int(args[0].value, 0) <= 1
        while f is not None:
            _target_names(f.target, assigned)
            f = f.inner_for_in
        self.frames.append(_Frame(comp, assigned, once, "comprehension"))
        inner = dict(state)
        f = first
        while f is not None:
            self._bind(f.target, inner)
            if f is not first:
                self._expr(f.iter, inner)
            for cond in f.ifs:
                self._expr(cond.test, inner)
            f = f.inner_for_in
        if isinstance(comp, cst.DictComp):
            self._expr(comp.key, inner)
            self._expr(comp.value, inner)
        else:
            self._expr(comp.elt, inner)
        self.frames.pop()
        # Keys first consumed inside the comprehension stay consumed after it.
        for tok, use in inner.items():
            if type(tok) is not tuple and tok not in state and K.base_name(tok) not in assigned:
                state[tok] = use

    def _call(self, call: cst.Call, state: dict) -> None:
        ctx = self.ctx
        qn = K.random_qualname(ctx, call.func)
        if qn is not None:
            if not K.key_taking(qn):
                return
            arg = K.key_arg(call)
            tok = K.token(arg)
            if tok is None:
                return
            kind = "fold_in" if qn == K.FOLD_IN else "draw"
            self._consume(tok, kind, call, f"`{K.short(qn)}`", state)
            return
        if not self.keys or self.in_test:
            return  # tests pass one key to several functions on purpose, to compare results
        fq = None
        if isinstance(call.func, (cst.Name, cst.Attribute)):
            fq = ctx.qualname(call.func)
            if fq in K.NON_CONSUMING or (fq is not None and fq.startswith(("jax.numpy.", "numpy.", "jax.lax.", "jax.tree_util.", "jax.tree.", "jax.debug.", "jax.dtypes.", "logging.", "typing."))):
                return
            last = call.func.attr.value if isinstance(call.func, cst.Attribute) else call.func.value
            if K.NON_CONSUMING_NAME_RE.search(last):
                return
            if isinstance(call.func, cst.Attribute) and K.STORE_METHOD_RE.match(last):
                return
            if self._sort_like(call):
                return
        for a in call.args:
            if a.star:
                continue
            if a.keyword is not None and a.keyword.value not in K.KEY_KEYWORDS:
                continue
            tok = K.token(a.value)
            if tok is None or "." in tok or tok not in self.keys:
                continue
            what = ctx.code(call.func)
            if len(what) > 40:
                what = what[:37] + "..."
            kind = "wrap" if fq in K.KEY_WRAPPERS else "pass"
            self._consume(tok, kind, call, f"`{what}(...)`", state)

    def _consume(self, tok: str, kind: str, call: cst.Call, what: str, state: dict) -> None:
        prev = state.get(tok)
        if prev is not None:
            replay = self.in_test and prev.kind == kind and self.ctx.code(prev.node) == self.ctx.code(call)
            if not (prev.kind == kind and kind in ("fold_in", "wrap")) and not replay:
                self._report_reuse(tok, call, what, prev)
            return
        use = state[tok] = _Use(kind, call, what)
        partner = state.get(("alias", tok))
        if partner is not None and partner not in state:
            state[partner] = use
        if kind in ("fold_in", "wrap"):
            return
        frame = self._frame()
        if frame is not None and K.base_name(tok) not in frame.assigned and tok not in frame.assigned:
            self._report_loop(tok, call, what, frame)

    def _frame(self) -> Optional[_Frame]:
        for f in reversed(self.frames):
            if not f.once:
                return f
        return None

    def _returned(self, value, state: dict) -> None:
        """`return x, key` after `key` was drawn from: the caller gets back a used key."""
        if self.ctx.scope.function is None:
            return
        items = [e.value for e in value.elements] if isinstance(value, cst.Tuple) else [value]
        for item in list(items):
            # `return State(x, rng_key)` / `state._replace(rng_key=key)`: a container of the key.
            if isinstance(item, cst.Call) and isinstance(item.func, (cst.Name, cst.Attribute)):
                last = item.func.attr.value if isinstance(item.func, cst.Attribute) else item.func.value
                if K.CONTAINER_RE.search(last):
                    items.extend(a.value for a in item.args if not a.star)
        for item in items:
            tok = K.token(item)
            if tok is None or "." in tok or tok not in self.keys:
                continue
            prev = state.get(tok)
            if prev is None or prev.kind not in ("draw", "pass") or id(item) in self._reported:
                continue
            self._reported.add(id(item))
            self.report(
                item,
                f"PRNG key `{tok}` is returned after line {self._row(prev.node)} already used it "
                f"(by {prev.what}): the caller gets back a spent key and will draw the same bits "
                f"again. Split it first — `{tok}, subkey = jr.split({tok})`, use `subkey`, and "
                f"return the new `{tok}`.",
                refs=self._refs(prev.node),
            )

    # ----------------------------------------------------------------- reports
    def _row(self, node) -> str:
        pos = self.ctx.position(node)
        return str(pos[0]) if pos else "?"

    def _refs(self, node) -> tuple:
        """The row `_row` cites (`Diagnostic.refs`: notebooks print it as cell and line)."""
        pos = self.ctx.position(node)
        return (pos[0],) if pos else ()

    def _report_reuse(self, tok: str, call, what: str, prev: _Use) -> None:
        if id(call) in self._reported:
            return
        self._reported.add(id(call))
        name = K.base_name(tok)
        self.report(
            call,
            f"PRNG key `{tok}` is used again by {what} after line {self._row(prev.node)} already "
            f"used it (by {prev.what}) with no split in between: both draw from the same random "
            f"bits, so the values are identical or correlated. Split first — "
            f"`{name}, subkey = jr.split({name})` and pass `subkey` — or draw separate keys with "
            f"`jr.split({name}, n)`.",
            refs=self._refs(prev.node),
        )

    def _report_loop(self, tok: str, call, what: str, frame: _Frame) -> None:
        if id(call) in self._reported:
            return
        self._reported.add(id(call))
        name = K.base_name(tok)
        self.report(
            call,
            f"PRNG key `{tok}` is used by {what} inside the {frame.label} at line "
            f"{self._row(frame.node)}, which never splits or rebinds it: every iteration draws the "
            f"same random values. Split per iteration (`{name}, subkey = jr.split({name})` in the "
            f"body), iterate over `jr.split({name}, n)`, or derive `jr.fold_in({name}, i)`.",
            refs=self._refs(frame.node),
        )


def _merge(a: Optional[dict], b: Optional[dict]) -> Optional[dict]:
    if a is None:
        return b
    if b is None:
        return a
    out = dict(a)
    for k, v in b.items():
        if k not in out:
            out[k] = v
    return out
