"""EQX402 key-made-in-traced-code: a PRNG key built from a constant inside traced code or
library code, or host RNG state (`np.random`, `random`) used inside traced code.

Whether a function is traced is the project's decision (`report_traced`: a trace site in any
module reaches it); the library case is reported only where no trace site reaches the function,
so one key gets one message."""

from __future__ import annotations

import re

import libcst as cst

from ..core.rule import Rule
from ..project.paths import is_script_path, is_test_path
from ..syntax.walker import iter_subtree
from . import _keys as K

_MAKERS = frozenset({"jax.random.PRNGKey", "jax.random.key"})
# Transforms that only look at shapes: a dummy key built under them is never sampled from.
_SHAPE_ONLY = frozenset({"jax.eval_shape", "equinox.filter_eval_shape", "jax.make_jaxpr", "equinox.filter_make_jaxpr"})


# Host RNG state management: it draws nothing that a compiled function could freeze.
_HOST_STATE = frozenset(
    {"numpy.random.seed", "numpy.random.get_state", "numpy.random.set_state", "random.seed",
     "random.getstate", "random.setstate"}
)

_SCRIPT_FN = re.compile(r"^_*(test|main$)|example|demo|bench|tutorial|profile")


def _constant(expr) -> bool:
    """A seed the caller cannot change: an int literal or arithmetic on literals."""
    if isinstance(expr, cst.Integer):
        return True
    if isinstance(expr, cst.UnaryOperation):
        return _constant(expr.expression)
    if isinstance(expr, cst.BinaryOperation):
        return _constant(expr.left) and _constant(expr.right)
    return False


def _shape_only(scope) -> bool:
    """Every transform applied to `scope` in this file (or, for a nested function without one,
    to the function around it) only looks at shapes (`jax.eval_shape`, `make_jaxpr`): a dummy
    key built there is never sampled from at run time."""
    sites = []
    seen = set()
    todo = [scope]
    while todo:
        s = todo.pop()
        if s is None or id(s) in seen:
            continue
        seen.add(id(s))
        sites.extend(s.sites)
        if not s.sites and s.parent is not None:
            todo.append(s.parent.function)
    return bool(sites) and all(site.qualname in _SHAPE_ONLY for site in sites)


class KeyMadeInTracedCode(Rule):
    code = "EQX402"
    options = {"library": True}

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        path = ctx.path
        self.exempt_path = is_test_path(path) or is_script_path(path)
        self.main_blocks: list = []
        self._discarded: set = set()  # id of key-maker calls only fed to a discarded draw

    def visit_If(self, node: cst.If) -> None:
        t = node.test
        if (
            isinstance(t, cst.Comparison)
            and isinstance(t.left, cst.Name)
            and t.left.value == "__name__"
            and self.ctx.scope.kind == "module"
        ):
            self.main_blocks.append(node)

    def leave_If(self, node: cst.If) -> None:
        if self.main_blocks and self.main_blocks[-1] is node:
            self.main_blocks.pop()

    def visit_Call(self, node: cst.Call) -> None:
        ctx = self.ctx
        func = node.func
        if not isinstance(func, (cst.Name, cst.Attribute)):
            return
        qn = ctx.qualname(func)
        if qn is None:
            return
        if qn in _MAKERS:
            self._maker(node, qn)
        elif qn.startswith(("numpy.random.", "random.")):
            self._host_rng(node, qn)

    # ------------------------------------------------------------------ jr.PRNGKey / jr.key
    def _maker(self, node: cst.Call, qn: str) -> None:
        ctx = self.ctx
        if self.exempt_path or self.main_blocks:
            return
        args = [a for a in node.args if not a.star]
        if len(args) < 1 or not _constant(args[0].value):
            return  # a key from a seed the caller passes in is deterministic and controllable
        call_src = ctx.code(node)
        if len(call_src) > 40:
            call_src = f"{ctx.code(node.func)}(...)"  # as written: `jax.random.PRNGKey(...)`
        fn = ctx.scope.function
        if fn is not None and self._fallback(fn):
            return  # a fallback for an optional key argument (`if key is None: key = jr.key(0)`)
        if fn is None or _shape_only(fn):
            return  # module code is never traced; a dummy key for shape inference
        if self._discarded_draw(node):
            return  # `jr.normal(jr.PRNGKey(0), ()).block_until_ready()`: a sync barrier, no randomness used
        split, fold_in = ctx.spell(K.SPLIT), ctx.spell(K.FOLD_IN)
        self.report_traced(
            node,
            f"`{call_src}` builds a constant PRNG key inside traced code ({{trace}}): "
            "the key is baked into the compiled function, so every call draws the same "
            "numbers and callers cannot control the randomness. Take a `key` argument and "
            f"split it (`key, subkey = {split}(key)`) or derive per-step keys with "
            f"`{fold_in}(key, step)`.",
        )
        if not self.opts.get("library", True) or fn.kind != "function":
            return
        if fn.name and _SCRIPT_FN.search(fn.name):
            return  # an example/benchmark/demo entry point kept inside a library module
        if self._shape_only_use(node) or not self._sampled_here(node, fn):
            return
        self.report(
            node,
            f"`{call_src}` builds a fixed PRNG key inside library function `{fn.name}`, which "
            "takes no key argument: every call draws the same random numbers and callers "
            "cannot reseed it. Add a `key` parameter and thread it through (split it with "
            f"`{split}`) instead of hard-coding a seed.",
            requires=("not", ("traced", fn.ref or "<module>", ["*"])),
        )

    def visit_IfExp(self, node: cst.IfExp) -> None:  # recorded in ctx.stack for _fallback
        pass

    def visit_BooleanOperation(self, node: cst.BooleanOperation) -> None:
        pass

    def _fallback(self, fn) -> bool:
        """The key is built under a test on one of the function's parameters or on a key-named
        variable (`rng_key = numpyro.prng_key(); if rng_key is None: rng_key = random.key(0)`):
        `if key is None: key = jr.PRNGKey(0)`, `key if key is not None else jr.key(0)`,
        `key or jr.PRNGKey(0)`."""
        params = set(fn.params)
        stack = self.ctx.stack
        for anc in reversed(stack[:-1]):
            if anc is fn.node:
                break
            test = None
            if isinstance(anc, (cst.If, cst.IfExp)):
                test = anc.test
            elif isinstance(anc, cst.BooleanOperation):
                test = anc.left
            if test is None:
                continue
            for n in iter_subtree(test, (cst.Name,)):
                if n.value in params or K.KEY_PARAM.match(n.value):
                    return True
        return False

    def _sampled_here(self, node: cst.Call, fn) -> bool:
        """The fixed key is drawn from in this function (`jr.normal(jr.PRNGKey(0), ...)`, or
        `k = jr.PRNGKey(0)` then `jr.split(k)`/`jr.uniform(k)`). A dummy key handed to an
        initialiser, a tracer or a state constructor is left alone: real libraries do that on
        purpose (shape-only initialisation, deterministic replays, defaults)."""
        ctx = self.ctx
        stack = ctx.stack
        parent = stack[-2] if len(stack) >= 2 else None
        names = set()
        if isinstance(parent, cst.Call):
            if K.key_taking(K.random_qualname(ctx, parent.func)) and K.key_arg(parent) is node:
                return True
        elif isinstance(parent, cst.Assign):
            for t in parent.targets:
                if isinstance(t.target, cst.Name) and parent.value is node:
                    names.add(t.target.value)
        if not names:
            return False
        for call in fn.calls:
            if K.key_taking(K.random_qualname(ctx, call.func)):
                arg = K.key_arg(call)
                if isinstance(arg, cst.Name) and arg.value in names:
                    return True
        return False

    def visit_Expr(self, node: cst.Expr) -> None:
        """A `jax.random` draw whose value is thrown away, or only waited on
        (`jr.normal(jr.PRNGKey(0), ()).block_until_ready()`, a device sync barrier): the key
        built for it is recorded in `_discarded` — no random number is used, whatever the seed."""
        e = node.value
        if (isinstance(e, cst.Call) and isinstance(e.func, cst.Attribute)
                and e.func.attr.value == "block_until_ready" and not e.args):
            e = e.func.value
        if isinstance(e, cst.Call) and isinstance(e.func, (cst.Name, cst.Attribute)):
            if K.key_taking(K.random_qualname(self.ctx, e.func)):
                k = K.key_arg(e)
                if isinstance(k, cst.Call):
                    self._discarded.add(id(k))

    def _discarded_draw(self, node: cst.Call) -> bool:
        return id(node) in self._discarded

    def _shape_only_use(self, node: cst.Call) -> bool:
        """`jax.eval_shape(f, key=jr.PRNGKey(0))`-style dummy keys, passed straight to a
        shape-only transform."""
        ctx = self.ctx
        stack = ctx.stack
        for anc in reversed(stack[:-1]):
            if isinstance(anc, cst.Call) and ctx.qualname(anc.func) in _SHAPE_ONLY:
                return True
        return False

    # ------------------------------------------------------------------ np.random / random
    def _host_rng(self, node: cst.Call, qn: str) -> None:
        fn = self.ctx.scope.function
        if fn is None or qn in _HOST_STATE or _shape_only(fn) or self.ctx.values.is_quiet(node):
            return  # state management, or code that only runs with concrete values
        if self._fallback(fn):
            return  # a default seed drawn when the caller gives none (`if seed is None: ...`)
        short = self.ctx.code(node.func)  # as written: `np.random.normal`, `random.random`
        self.report_traced(
            node,
            f"`{short}` (host random state) inside traced code ({{trace}}): it "
            "runs once, at trace time, so its value is frozen into the compiled function and "
            "every call sees the same number. Pass a JAX key in and use the matching "
            f"`jax.random` function (e.g. `{self.ctx.spell('jax.random.normal')}(key, shape)`, "
            f"`{self.ctx.spell('jax.random.randint')}(key, ...)`).",
        )
