"""EQX211 untested-custom-ad: custom JVP/VJP or primitive rules no test checks against finite
differences or under vmap.

One class, two phases:
- per file (it is a `Rule`, so it runs on every linted file when EQX211 is enabled): `end_file`
  writes `ctx.facts["eqx211"]` = {"defs": custom-AD definitions of a non-test file,
  "units": test units (test functions / test-file functions) with finite-difference or vmap
  evidence and the identifiers each mentions, "tests": whether the file holds tests at all,
  "prototype": the file opts out as a prototype}. These facts are cached with the file's result
  (the cache key includes the enabled rules), and reach `check_project` through
  `ProjectIndex.facts[path]`. No collector is added to `index.COLLECTORS`: the facts are only
  needed when this rule runs.
- project (it is a `ProjectRule`): `check_project` reports each definition that no evidence-bearing
  test unit mentions by name (its own name, or the module-level function that contains it), and
  each primitive with hand-registered JVP/transpose/batching rules (from the project index) that
  none mentions. Silent when the project holds no tests at all (linting a wheel, or `src/` alone,
  says nothing about the tests).
"""

from __future__ import annotations

import libcst as cst

from ..core.diagnostics import Diagnostic
from ..core.rule import ProjectRule, Rule
from ..project.paths import is_test_path
from ..semantics import names as S
from ..semantics.values import FN
from ..syntax.walker import iter_subtree

KEY = "eqx211"
PROTOTYPE_MARK = "eqxlint: prototype"
PROTOTYPE_DIRS = ("prototype", "prototypes", "experimental", "sandbox", "scratch", "examples", "notebooks", "benchmarks", "scripts")

# Finite-difference checkers (also check custom rules against numerical derivatives).
FD_CHECKERS = {
    "jax.test_util.check_grads", "jax.test_util.check_jvp", "jax.test_util.check_vjp",
    "jax._src.test_util.check_grads", "jax._src.public_test_util.check_grads",
    "jax._src.public_test_util.check_jvp", "jax._src.public_test_util.check_vjp",
    "eqxlint.runtime.check_jvp", "eqxlint.runtime.check_vjp", "eqxlint.runtime.check_primitive",
    "chex.assert_numerical_grads",
}
VMAP_CHECKERS = {
    "jax.vmap", "equinox.filter_vmap", "equinox.internal.filter_vmap", "eqxlint.runtime.check_vmap",
    "eqxlint.runtime.check_primitive",
}
FD_NAME_HINTS = ("finite_diff", "finite_difference", "numerical_grad", "numerical_jvp", "numerical_jacobian", "fd_grad", "fd_jvp", "check_grads", "check_jvp", "check_vjp", "check_primitive")
VMAP_NAME_HINTS = ("check_vmap",)
# Comparisons of computed values with expected ones (`assert`, `np.testing.assert_allclose`,
# `jnp.allclose`, `self.assertAllClose`, `chex.assert_trees_all_close`).
COMPARE_NAME_HINTS = ("assert", "allclose", "isclose", "almost_equal", "array_equal")


def _is_test_name(name) -> bool:
    """pytest-style test function names: `test`, `test_x`, `testX`."""
    name = name or ""
    return name == "test" or name.startswith("test_") or (name.startswith("test") and name[4:5].isupper())


def _is_test_function(scope) -> bool:
    if not _is_test_name(scope.name):
        return False
    cls = scope.parent
    if cls is None or cls.kind != "class":
        return True
    n = cls.name or ""
    return n.startswith("Test") or n.endswith(("Test", "Tests", "TestCase"))


def _asserts(fn_node) -> bool:
    """Outside test files a `test*` function counts only if it checks something."""
    for node in iter_subtree(fn_node, (cst.Assert, cst.Call)):
        if isinstance(node, cst.Assert):
            return True
        f = node.func
        name = f.attr.value if isinstance(f, cst.Attribute) else (f.value if isinstance(f, cst.Name) else "")
        if "assert" in name.lower() or name.lower().startswith("check"):
            return True
    return False


def _is_helper_module(path: str) -> bool:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name in ("test_util.py", "test_utils.py", "test_helpers.py", "testing.py", "testutils.py")


def _is_prototype_path(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")[:-1]
    return any(p.lower() in PROTOTYPE_DIRS for p in parts)


def _is_fd_quotient(node: cst.BinaryOperation) -> bool:
    """`(f(x + h) - f(x)) / h`, `(f(x + eps) - f(x - eps)) / (2 * eps)`."""
    if not isinstance(node.operator, cst.Divide):
        return False
    num = node.left
    if not (isinstance(num, cst.BinaryOperation) and isinstance(num.operator, cst.Subtract)):
        return False
    if not (isinstance(num.left, cst.Call) and isinstance(num.right, cst.Call)):
        return False
    for call in (num.left, num.right):
        for arg in call.args:
            if isinstance(arg.value, cst.BinaryOperation) and isinstance(arg.value.operator, (cst.Add, cst.Subtract)):
                return True
    return False


class UntestedCustomAD(Rule, ProjectRule):
    code = "EQX211"
    options = {}

    # ---------------------------------------------------------------- per-file facts
    def end_file(self) -> None:
        ctx = self.ctx
        path = ctx.path
        test_file = is_test_path(path)
        facts = {"tests": False, "defs": [], "units": [], "prototype": False}
        facts["prototype"] = _is_prototype_path(path) or PROTOTYPE_MARK in ctx.source
        if not test_file:
            facts["defs"] = self._custom_ad_defs()
            binds = sorted({
                c.func.value.value for c, _ in ctx.calls
                if isinstance(c.func, cst.Attribute) and c.func.attr.value == "bind"
                and isinstance(c.func.value, cst.Name)
            }) if ".bind(" in ctx.source else []
            prim_defs = [{"name": b, "outer": []} for b in binds]
            if facts["defs"] or prim_defs:
                self._add_callers(facts["defs"] + prim_defs)
            facts["prim_callers"] = {d["name"]: d["outer"] for d in prim_defs}
            facts["prim_keys"] = {d["name"]: d.get("keys", []) for d in prim_defs}
        units = self._test_units(test_file)
        if units is not None:
            facts["tests"] = units[0]
            facts["units"] = units[1]
        ctx.facts[KEY] = facts

    def _custom_ad_defs(self) -> list:
        ctx = self.ctx
        out = []
        for scope in ctx.scopes:
            if scope.kind != "function":
                continue
            kind = None
            for dec in scope.node.decorators:
                expr = dec.decorator
                if isinstance(expr, cst.Call):
                    qn = ctx.qualname(expr.func)
                    if qn in ("functools.partial", "partial") and expr.args:
                        qn = ctx.qualname(expr.args[0].value)
                else:
                    qn = ctx.qualname(expr)
                if qn in S.CUSTOM_JVP:
                    kind = "custom JVP"
                elif qn in S.CUSTOM_VJP:
                    kind = "custom VJP"
            if kind is None:
                continue
            fact = self._def_fact(scope.node.name, scope.name, kind, scope, scope.node)
            fact["keys"] = [scope.ref]
            out.append(fact)
        for assign, scope in ctx.assigns:
            val = assign.value
            if not isinstance(val, cst.Call):
                continue
            qn = ctx.qualname(val.func)
            if qn not in S.CUSTOM_JVP and qn not in S.CUSTOM_VJP:
                continue
            kind = "custom JVP" if qn in S.CUSTOM_JVP else "custom VJP"
            wrapped = ctx.values.of(val.args[0].value) if val.args else None
            for t in assign.targets:
                if isinstance(t.target, cst.Name):
                    fn = scope.function
                    fact = self._def_fact(t.target, t.target.value, kind, fn or scope, assign)
                    keys = [f"{ctx.module_name}.{t.target.value}"] if fn is None else []
                    if wrapped is not None and wrapped.kind == FN and wrapped.ref:
                        keys.append(wrapped.ref)
                    fact["keys"] = keys
                    out.append(fact)
        return out

    def _add_callers(self, defs: list) -> None:
        """Same-file functions that use a definition (transitively, 3 levels): a test of the
        public wrapper exercises the custom rule inside it. `_name` is also reached as `name`."""
        ctx = self.ctx
        mentions: dict = {}
        refs: dict = {}
        for scope in ctx.scopes:
            if scope.kind == "function" and scope.name and (
                scope.parent is ctx.module_scope
                or (scope.parent.kind == "class" and scope.parent.parent is ctx.module_scope)
            ):
                # Attribute names (`self._f`) are Name nodes too.
                mentions[scope.name] = {n.value for n in iter_subtree(scope.node.body, (cst.Name,))}
                refs.setdefault(scope.name, []).append(scope.ref)
        for d in defs:
            reach = {d["name"], *d["outer"]}
            frontier = set(reach)
            for _ in range(3):
                new = {f for f, names in mentions.items() if f not in reach and names & frontier}
                if not new:
                    break
                reach |= new
                frontier = new
            aliases = reach - {d["name"]}
            aliases |= {n.lstrip("_") for n in reach if n.startswith("_") and n.lstrip("_")}
            d["outer"] = sorted(aliases)
            # The project's call graph finds the callers in other modules (a public wrapper).
            keys = set(d.get("keys", ())) | {r for n in reach - {d["name"]} for r in refs.get(n, ())}
            d["keys"] = sorted(keys)

    def _def_fact(self, node, name: str, kind: str, scope, hint) -> dict:
        ctx = self.ctx
        pos = ctx.position(node, hint)
        # The module-level function (or class) that contains a nested definition: tests call that.
        outer = []
        s = scope
        while s is not None and s.parent is not None:
            if s.kind in ("function", "class") and s.name and s.name != name:
                outer.append(s.name)
            s = s.parent
        return {
            "name": name, "kind": kind, "outer": outer, "row": pos[0], "col": pos[1] + 1,
            "end_row": pos[2], "end_col": pos[3] + 1, "line_text": " ".join(ctx.line_comment(pos[0]).split()),
            "module": ctx.module_name,
        }

    def _test_units(self, test_file: bool):
        """(has tests?, [{"names": [...], "fd": bool, "vmap": bool}]) for units with evidence."""
        ctx = self.ctx
        candidates = []
        for scope in ctx.scopes:
            if scope.kind != "function":
                continue
            if scope.parent is not ctx.module_scope and not (scope.parent.kind == "class" and scope.parent.parent is ctx.module_scope):
                continue
            candidates.append(scope)
        is_test = (lambda n: True) if test_file else _is_test_name
        # A file holds tests when it defines pytest/unittest-style test functions (a test-file
        # path alone, e.g. a `test_utils.py` helper module, is not enough).
        # A test is a pytest/unittest test: a top-level `test*` function or a `test*` method of
        # a `Test*`/`*Test(s)`/`*TestCase` class, outside helper modules such as `test_util.py`
        # (library helpers named `test_event`/`test_parity` do not make tests visible); outside
        # test files it must also assert or check something.
        has_tests = not _is_helper_module(ctx.path) and any(
            _is_test_function(s) and (test_file or _asserts(s.node)) for s in candidates
        )
        if not has_tests or not candidates:
            return has_tests, []
        info = {}
        for scope in candidates:
            names = set()
            fd = vmap = derivative = compared = False
            for node in iter_subtree(scope.node, (cst.Name, cst.Attribute, cst.Call, cst.BinaryOperation, cst.SimpleString, cst.Assert)):
                if isinstance(node, cst.Assert):
                    compared = True
                elif isinstance(node, cst.Name):
                    names.add(node.value)
                elif isinstance(node, cst.Attribute):
                    names.add(node.attr.value)
                elif isinstance(node, cst.SimpleString):
                    v = node.evaluated_value
                    if isinstance(v, str) and v.isidentifier():
                        names.add(v)  # primitive names, parametrize ids
                elif isinstance(node, cst.Call):
                    qn = ctx.qualname(node.func) or ""
                    tail = qn.rsplit(".", 1)[-1] if qn else (node.func.attr.value if isinstance(node.func, cst.Attribute) else "")
                    low = tail.lower()
                    if qn in FD_CHECKERS or any(h in low for h in FD_NAME_HINTS):
                        fd = True
                    if qn in VMAP_CHECKERS or any(h in low for h in VMAP_NAME_HINTS):
                        vmap = True
                    if S.TRANSFORM_KIND.get(qn) == "ad":
                        derivative = True  # jax.grad / jvp / jacrev / eqx.filter_grad ...
                    if any(h in low for h in COMPARE_NAME_HINTS):
                        compared = True
                elif isinstance(node, cst.BinaryOperation) and _is_fd_quotient(node):
                    fd = True
            # A derivative compared with expected (analytic) values checks the rule too.
            fd = fd or (derivative and compared)
            info[id(scope)] = (scope.name, names, fd, vmap)
        # One level through same-file helpers: a test calling `_check(f)` where `_check` does the
        # finite-difference comparison.
        units = []
        helpers = {}
        for name, names, fd, vmap in info.values():
            if fd or vmap:
                h = helpers.setdefault(name, [False, False])
                h[0] = h[0] or fd
                h[1] = h[1] or vmap
        for key, (name, names, fd, vmap) in info.items():
            if not is_test(name):
                continue
            for other, (ofd, ovmap) in helpers.items():
                if other != name and other in names:
                    fd = fd or ofd
                    vmap = vmap or ovmap
            if fd or vmap:
                units.append({"names": sorted(names), "fd": fd, "vmap": vmap})
        return has_tests, units

    # ---------------------------------------------------------------- project phase
    @classmethod
    def check_project(cls, index, options: dict) -> list:
        facts_by_path = {p: f.get(KEY) for p, f in index.facts.items() if f.get(KEY) is not None}
        top = {p: (index.facts[p].get("module") or "").split(".")[0] for p in facts_by_path}
        # Test evidence counts for definitions of its own top-level package, and loose test files
        # (a repository's `tests/`) for what lies under their grandparent folder. So several
        # projects linted together (a monorepo, a corpus) do not vouch for each other.
        import os

        tested: dict = {}
        covered: dict = {}
        loose_roots: dict = {}  # folder -> names covered by loose tests beneath it
        for p, f in facts_by_path.items():
            module = index.facts[p].get("module") or ""
            if "." not in module or top[p] in ("tests", "test"):
                # A loose test file (`repo/tests/test_x.py`) vouches for its grandparent folder.
                root = os.path.dirname(os.path.dirname(os.path.abspath(p)))
                entry = loose_roots.setdefault(root, [False, set()])
                entry[0] = entry[0] or bool(f["tests"])
                for unit in f["units"]:
                    entry[1].update(unit["names"])
                continue
            if f["tests"]:
                tested[top[p]] = True
            for unit in f["units"]:
                covered.setdefault(top[p], set()).update(unit["names"])

        def view(path: str):
            """(tests in view?, names covered) for a definition in `path`."""
            ap = os.path.abspath(path)
            any_tests = tested.get(top[path], False)
            names = set(covered.get(top[path], ()))
            for root, (has, cov) in loose_roots.items():
                if ap.startswith(root + os.sep):
                    any_tests = any_tests or has
                    names |= cov
            return any_tests, names
        callers = _Callers(index)
        out = []
        for path, f in facts_by_path.items():
            if f["prototype"]:
                continue
            has_tests, seen = view(path)
            if not has_tests:
                continue  # no tests in view for this package: nothing can be said about them
            for d in f["defs"]:
                if d["name"] in seen or any(o in seen for o in d["outer"]):
                    continue
                if callers.names(d.get("keys", ())) & seen:
                    continue  # a test of a public wrapper in another module
                out.append(Diagnostic(
                    code=cls.code,
                    message=(
                        f"{d['kind']} `{d['name']}` is not checked by any test against finite "
                        "differences or under `vmap`: a wrong derivative or batching rule gives "
                        "silently wrong gradients, and primal-only tests cannot see it. Add a test "
                        f"that calls `jax.test_util.check_grads({d['name']}, args, order=1)` or "
                        f"`eqxlint.runtime.check_jvp`/`check_vjp`/`check_vmap` on `{d['name']}`."
                    ),
                    filename=path, row=d["row"], column=d["col"], end_row=d["end_row"],
                    end_column=d["end_col"], severity="info", noqa_row=d["row"], line_text=d["line_text"],
                ))
        for qual, prim in getattr(index, "primitives", {}).items():
            f = facts_by_path.get(prim.path)
            if f is None or f["prototype"] or prim.nondiff:
                continue
            kinds = [k for k in ("jvp", "transpose", "batching") if prim.rules.get(k)]
            if not kinds:
                continue
            has_tests, seen = view(prim.path)
            if not has_tests:
                continue
            var = qual.rsplit(".", 1)[-1]
            outer = f.get("prim_callers", {}).get(var, [])
            if var in seen or (prim.name and prim.name in seen) or any(c in seen for c in outer):
                continue
            if callers.names(f.get("prim_keys", {}).get(var, ())) & seen:
                continue
            out.append(Diagnostic(
                code=cls.code,
                message=(
                    f"Primitive `{var}` has hand-registered {', '.join(kinds)} rule(s) that no test "
                    "checks against finite differences or under `vmap`: a wrong rule gives silently "
                    "wrong gradients or batched results. Add a test calling "
                    f"`eqxlint.runtime.check_primitive({var}, *example_args)` (JVP vs finite "
                    "differences, transpose by the dot-product test, batching vs a loop)."
                ),
                filename=prim.path, row=prim.row, column=prim.col, end_row=prim.end_row,
                end_column=prim.end_col, severity="info", noqa_row=prim.row, line_text=prim.line_text,
            ))
        return out


class _Callers:
    """The project functions that reach given functions through calls (up to three levels), from
    the project call graph: a test of a public wrapper in another module exercises the custom
    rule inside it."""

    DEPTH = 3

    def __init__(self, index):
        self.index = index
        self._rev = None

    def _reverse(self) -> dict:
        if self._rev is None:
            from ..project.callgraph import KIND, TO

            g = self.index.graph
            rev: dict = {}
            for f in g.fns.values():
                for e in f.edges:
                    if e[KIND] not in ("call", "wrap", "arg"):
                        continue
                    for key in set(g.resolve(e[TO])) | {self.index.canonical(e[TO])}:
                        rev.setdefault(key, set()).add(f.ref)
            self._rev = rev
        return self._rev

    def names(self, keys) -> set:
        if not keys:
            return set()
        rev = self._reverse()
        keys = {self.index.canonical(k) for k in keys} | set(keys)
        seen = set(keys)
        frontier = set(keys)
        for _ in range(self.DEPTH):
            new = set()
            for k in frontier:
                new |= rev.get(k, set())
            new -= seen
            if not new:
                break
            seen |= new
            frontier = new
        out = set()
        for ref in seen - keys:
            name = ref.rsplit(".", 1)[-1]
            if len(name) > 2 and not name.startswith(("<", "__")):
                out.add(name)
                if name.startswith("_") and name.lstrip("_"):
                    out.add(name.lstrip("_"))
        return out
