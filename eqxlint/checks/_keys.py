"""PRNG-rule family logic (EQX401 key reuse, EQX402 key creation, EQX403 split by leaf count).

What *is* a key, and whether a call draws from one, is the semantic layer's
(`eqxlint.semantics.keys`, asked through `ctx.values.is_key` / `ctx.values.key_args`). This
module holds what only these rules need: stable names for key expressions, the loop and
selection tables, the *deliberate same draw* of EQX401's allowed break, message fragments and
the leaf-count helpers of EQX403. Nothing here imports jax."""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from ..semantics import keys as SK
from ..semantics import names as S
from ..semantics.values import STATIC
from ..syntax.walker import iter_subtree

RANDOM_PREFIX = S.RANDOM + "."
FOLD_IN = f"{S.RANDOM}.fold_in"
SPLIT = f"{S.RANDOM}.split"
key_taking = SK.key_taking
KEY_PARAM = SK.KEY_PARAM

# Calls that bind a key to a function for later replay (`seed(model, key)`, `seed(guide, key)`
# share one key on purpose); binding twice is not reuse, a draw before or after is.
KEY_WRAPPERS = frozenset({"numpyro.handlers.seed", "numpyro.primitives.seed"})
# Loops whose body function runs once per iteration: qualname -> position of the body argument.
LOOP_BODIES = {"jax.lax.fori_loop": 2, "jax.lax.scan": 0, "jax.lax.while_loop": 1, "jax.lax.map": 0}
# Element-wise selections: their value arguments are alternatives, not sequential uses.
SELECTS = frozenset({"jax.lax.select", "jax.numpy.where", "jax.lax.select_n", "jax.numpy.select", "numpy.where"})
# Constructors/updaters that carry a key along in a returned state object.
CONTAINER_RE = re.compile(r"^_*(replace|_replace)$|(State|Carry)$")

_NESTED = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


def iter_pruned(root):
    """Pre-order nodes under `root`, not descending into nested functions, lambdas, classes
    (they are analysed as scopes of their own)."""
    return iter_subtree(root, prune=_NESTED)


def random_qualname(ctx, func) -> Optional[str]:
    qn = ctx.qualname(func) if type(func) in (cst.Name, cst.Attribute) else None
    if qn is not None and qn.startswith(RANDOM_PREFIX):
        return qn
    return None


def key_arg(call: cst.Call) -> Optional[cst.BaseExpression]:
    """The key argument of a jax.random call: first positional, or `key=`."""
    a = SK.key_arg(call)
    return a.value if a is not None else None


def token(expr) -> Optional[str]:
    """A stable name for a key expression: `key`, `self.key`, `keys[0]`; None otherwise
    (calls, variable indexes, ...)."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        base = token(expr.value)
        if base is None or "[" in base:
            return None
        return f"{base}.{expr.attr.value}"
    if isinstance(expr, cst.Subscript):
        base = token(expr.value)
        if base is None or len(expr.slice) != 1:
            return None
        el = expr.slice[0].slice
        if not isinstance(el, cst.Index):
            return None
        v = el.value
        if isinstance(v, cst.Integer):
            return f"{base}[{v.value}]"
        if isinstance(v, cst.UnaryOperation) and isinstance(v.operator, cst.Minus) and isinstance(v.expression, cst.Integer):
            return f"{base}[-{v.expression.value}]"
        return None
    return None


def base_name(tok: str) -> str:
    for i, ch in enumerate(tok):
        if ch in ".[":
            return tok[:i]
    return tok


def short(qn: str) -> str:
    return qn.replace("jax.random.", "jr.").replace("equinox.", "eqx.")


# ---------------------------------------------------------------------------- messages
def split_advice(tok: str, split: str = "jr.split") -> str:
    """How to give two uses of the key `tok` keys of their own, in valid code (`split`: how the
    file spells `jax.random.split`, `ctx.spell`)."""
    if "." not in tok and "[" not in tok:
        sub = "subkey" if tok != "subkey" else "sub"
        return (
            f"Split first — `{tok}, {sub} = {split}({tok})` and pass `{sub}` — or draw separate "
            f"keys with `{split}({tok}, n)`."
        )
    extra = ""
    if tok.endswith("]"):
        extra = f", or use another element of `{tok[: tok.rindex('[')]}`"
    return f"Split it — `k1, k2 = {split}({tok})` and give each use its own key{extra}."


def loop_advice(tok: str, split: str = "jr.split", fold_in: str = "jr.fold_in") -> str:
    if "." not in tok and "[" not in tok:
        return (
            f"Split per iteration (`{tok}, subkey = {split}({tok})` in the body), iterate over "
            f"`{split}({tok}, n)`, or derive `{fold_in}({tok}, i)`."
        )
    return f"Iterate over `{split}({tok}, n)`, or derive a key per iteration with `{fold_in}({tok}, i)`."


def return_advice(tok: str, split: str = "jr.split") -> str:
    if "." not in tok and "[" not in tok:
        sub = "subkey" if tok != "subkey" else "sub"
        return f"Split it first — `{tok}, {sub} = {split}({tok})`, use `{sub}`, and return the new `{tok}`."
    return f"Split it first — `new, sub = {split}({tok})`, use `sub`, and return `new`."


# ---------------------------------------------------------------------------- allowed break
# jax.random draws that reorder, pick or crop: the same draw on aligned arrays keeps them aligned.
INDEX_SAMPLERS = frozenset({f"{S.RANDOM}.permutation", f"{S.RANDOM}.choice", f"{S.RANDOM}.shuffle", f"{S.RANDOM}.randint"})
# ... of which those that take the array itself (`jr.permutation(key, x)`, `jr.choice(key, x)`).
ARRAY_SAMPLERS = frozenset({f"{S.RANDOM}.permutation", f"{S.RANDOM}.choice", f"{S.RANDOM}.shuffle"})
# Augmentation helpers (libraries such as dm-pix, or the project's own): applied with one key to
# an image and its mask, they crop/flip/permute both the same way.
AUGMENT_RE = re.compile(r"(?i)(permut|shuffle|crop|flip|rot90|rotat|choice|augment|translat|affine|zoom|jitter|cutout)")
# Parallel data: one name of each column is aligned with one of the other.
_INPUTS = frozenset(
    {"x", "xs", "input", "inputs", "image", "images", "img", "imgs", "data", "feature", "features",
     "feats", "obs", "observation", "observations", "state", "states", "sample", "samples", "point",
     "points", "source", "sources", "src", "frame", "frames", "video", "videos", "text", "tokens"}
)
_TARGETS = frozenset(
    {"y", "ys", "target", "targets", "label", "labels", "lbl", "lbls", "mask", "masks", "seg",
     "segmentation", "segmentations", "action", "actions", "reward", "rewards", "tgt", "tgts",
     "annotation", "annotations", "depth", "depths", "box", "boxes", "weight", "weights", "mask_image"}
)
_LEAD_CHECKS = frozenset({"chex.assert_equal_shape", "chex.assert_equal_shape_prefix", "chex.assert_equal_size", "chex.assert_equal_rank"})
_SLICERS = frozenset(
    {"jax.lax.dynamic_slice", "jax.lax.dynamic_slice_in_dim", "jax.lax.dynamic_index_in_dim",
     "jax.numpy.take", "jax.numpy.take_along_axis", "jax.lax.dynamic_update_slice"}
)


def _norm(name: str) -> str:
    return name.strip("_").lower()


def paired_names(a: str, b: str) -> bool:
    """Names of parallel data by convention: `x`/`y`, `images`/`labels`, `x_train`/`y_train`."""
    na, nb = _norm(a), _norm(b)
    if na == nb:
        return False
    if (na in _INPUTS and nb in _TARGETS) or (nb in _INPUTS and na in _TARGETS):
        return True
    for p, q in (("x", "y"), ("y", "x")):
        if na.startswith(p) and nb == q + na[1:] or na.endswith(p) and nb == na[:-1] + q:
            return True
    parts_a, parts_b = na.split("_"), nb.split("_")
    if len(parts_a) == len(parts_b) > 1:
        diff = [(u, v) for u, v in zip(parts_a, parts_b) if u != v]
        if len(diff) == 1 and paired_names(*diff[0]):
            return True
    return False


class FunctionFacts:
    """What EQX401's allowed break needs of one function body, built on first use: which names
    are parallel data, and which arrays each index draw indexes."""

    def __init__(self, ctx, body):
        self.ctx = ctx
        self.groups: list = []  # sets of names unpacked/zipped/compared together
        self.by_index: dict = {}  # index source -> names indexed with it
        self.indexes: dict = {}  # id(call) -> arrays (source) its result indexes directly
        self.assigned: dict = {}  # id(call) -> names its result is assigned to
        self.index_users: dict = {}  # name -> arrays it indexes
        code = ctx.code
        for node in iter_pruned(body):
            tp = type(node)
            if tp is cst.Assign:
                if type(node.value) is cst.Call:
                    names = [t.target.value for t in node.targets if type(t.target) is cst.Name]
                    self.assigned[id(node.value)] = names
                for t in node.targets:
                    self._group(t.target)
            elif tp is cst.For or tp is cst.CompFor:
                self._group(node.target)
            elif tp is cst.Subscript:
                arr = code(node.value)
                for el in node.slice:
                    inner = el.slice
                    parts = [inner.value] if type(inner) is cst.Index else [p for p in (inner.lower, inner.upper) if p is not None]
                    for part in parts:
                        if type(node.value) is cst.Name and type(inner) is cst.Index and type(part) is not cst.Integer:
                            self.by_index.setdefault(code(part), set()).add(node.value.value)
                        for sub in iter_pruned(part):
                            if type(sub) is cst.Call:
                                self.indexes.setdefault(id(sub), set()).add(arr)
                            elif type(sub) is cst.Name:
                                self.index_users.setdefault(sub.value, set()).add(arr)
            elif tp is cst.Call:
                qn = ctx.qualname(node.func) if type(node.func) in (cst.Name, cst.Attribute) else None
                if qn == "zip" or qn in _LEAD_CHECKS:
                    args = [a.value for a in node.args if not a.star]
                    if qn in _LEAD_CHECKS and args and type(args[0]) in (cst.List, cst.Tuple):
                        args = [e.value for e in args[0].elements]
                    names = {a.value for a in args if type(a) is cst.Name}
                    if len(names) > 1:
                        self.groups.append(names)
                elif qn in _SLICERS and node.args:
                    arr = code(node.args[0].value)
                    for a in node.args[1:]:
                        for sub in iter_pruned(a.value):
                            if type(sub) is cst.Name:
                                self.index_users.setdefault(sub.value, set()).add(arr)
            elif tp is cst.Comparison:
                lead = {n for n in (_leading(node.left),) + tuple(_leading(c.comparator) for c in node.comparisons) if n}
                if len(lead) > 1:
                    self.groups.append(lead)

    def _group(self, target) -> None:
        if type(target) in (cst.Tuple, cst.List):
            names = {e.value.value for e in target.elements if type(e.value) is cst.Name}
            if len(names) > 1:
                self.groups.append(names)

    def aligned(self, a, b) -> bool:
        """Do the array expressions `a` and `b` share their leading axis, as far as the code
        shows: unpacked or zipped together, compared by `len`/`.shape[0]`, indexed with the
        same index, columns of one container (`batch["x"]`, `batch["y"]`), or named as
        parallel data (`x`/`y`, `images`/`labels`)."""
        code = self.ctx.code
        ta, tb = type(a), type(b)
        if ta is tb and ta in (cst.Subscript, cst.Attribute) and code(a.value) == code(b.value):
            return True
        if ta is cst.Name and tb is cst.Name:
            na, nb = a.value, b.value
            if any(na in g and nb in g for g in self.groups):
                return True
            if any(na in g and nb in g for g in self.by_index.values()):
                return True
            return paired_names(na, nb)
        if ta is tb and ta is cst.Subscript and len(a.slice) == len(b.slice):
            if all(code(x) == code(y) for x, y in zip(a.slice, b.slice)):
                return self.aligned(a.value, b.value)
        return False

    def indexed(self, call) -> set:
        """The arrays the result of an index draw indexes (`x[jr.choice(...)]`, or through the
        name it is assigned to: `idx = ...; x[idx]`, `lax.dynamic_slice(img, (i, j), ...)`)."""
        out = set(self.indexes.get(id(call), ()))
        for name in self.assigned.get(id(call), ()):
            out |= self.index_users.get(name, set())
        return out


def _leading(expr) -> Optional[str]:
    """`x` for `len(x)`, `x.shape[0]`, `jnp.shape(x)[0]`."""
    if type(expr) is cst.Call and type(expr.func) is cst.Name and expr.func.value == "len" and len(expr.args) == 1:
        v = expr.args[0].value
        return v.value if type(v) is cst.Name else None
    if type(expr) is cst.Subscript and len(expr.slice) == 1 and type(expr.slice[0].slice) is cst.Index:
        idx = expr.slice[0].slice.value
        if type(idx) is cst.Integer and idx.value == "0":
            v = expr.value
            if type(v) is cst.Attribute and v.attr.value == "shape" and type(v.value) is cst.Name:
                return v.value.value
    return None


def _arguments(call: cst.Call, key_arg_node) -> Optional[dict]:
    """Arguments other than the key: position or keyword -> expression."""
    out = {}
    i = 0
    for a in call.args:
        if a.star:
            return None
        if a is key_arg_node:
            if a.keyword is None:
                i += 1
            continue
        if a.keyword is not None:
            out[a.keyword.value] = a.value
        else:
            out[i] = a.value
            i += 1
    return out


def same_draw(ctx, first, second, facts: FunctionFacts) -> bool:
    """EQX401's allowed break: two uses of one key that are one draw on purpose. The same
    reordering/choice/crop applied to arrays that share their leading axis
    (`jr.permutation(key, x)` and `jr.permutation(key, y)` for paired data, an augmentation
    helper on an image and its mask), or the same index draw (`jr.choice(key, n, (b,))`) used to
    index two aligned arrays. Two different samplers, or one sampler on unrelated arrays, are
    not."""
    a, b = first.node, second.node
    if first.callee != second.callee or first.callee is None:
        return False
    qn = first.callee
    random = qn.startswith(RANDOM_PREFIX)
    if random and qn not in INDEX_SAMPLERS:
        return False
    if not random and not AUGMENT_RE.search(qn.rsplit(".", 1)[-1]):
        return False
    args_a, args_b = _arguments(a, first.arg), _arguments(b, second.arg)
    if args_a is None or args_b is None or set(args_a) != set(args_b):
        return False
    code = ctx.code
    differing = [(k, args_a[k], args_b[k]) for k in args_a if code(args_a[k]) != code(args_b[k])]
    if not differing:
        # One draw computed twice: deliberate when it indexes two arrays (`x[idx]`, `y[idx]`).
        return random and len(facts.indexed(a) | facts.indexed(b)) > 1
    if random:
        if qn not in ARRAY_SAMPLERS or len(differing) != 1 or differing[0][0] not in (1, "x", "a"):
            return False
        # The same reordering or choice (same key, same shape and axis arguments) applied to two
        # arrays is one draw used to keep them aligned, whatever they are called. Two sizes
        # (`permutation(key, n)`, `permutation(key, m)`) are two draws.
        _, x, y = differing[0]
        return _array_operand(ctx, x) and _array_operand(ctx, y)
    return all(facts.aligned(x, y) for _, x, y in differing)


def _array_operand(ctx, expr) -> bool:
    """`expr` may be an array (not a size: a literal, `len(x)`, a shape or a static constant)."""
    if type(expr) in (cst.Integer, cst.Float, cst.UnaryOperation):
        return False
    return ctx.values.of(expr).kind != STATIC


# ---------------------------------------------------------------------------- EQX403 helpers
def is_leaf_count(ctx, expr, counts: dict) -> Optional[str]:
    """`len(jax.tree_util.tree_leaves(t))`, `tree_structure(t).num_leaves`, or a name bound to
    one of those in `counts`; returns the tree expression's source, else None."""
    if isinstance(expr, cst.Name) and expr.value in counts:
        return counts[expr.value]
    if isinstance(expr, cst.Call) and ctx.qualname(expr.func) == "len" and len(expr.args) == 1:
        inner = expr.args[0].value
        if isinstance(inner, cst.Name) and inner.value in counts.get("__leaves__", {}):
            return counts["__leaves__"][inner.value]
        tree = leaves_of(ctx, inner)
        if tree is not None:
            return tree
    if isinstance(expr, cst.Attribute) and expr.attr.value == "num_leaves":
        v = expr.value
        if isinstance(v, cst.Call) and ctx.qualname(v.func) in TREE_STRUCTURE and v.args:
            return ctx.code(v.args[0].value)
        if isinstance(v, cst.Name) and v.value in counts.get("__treedef__", {}):
            return counts["__treedef__"][v.value]
    return None


TREE_LEAVES = frozenset({"jax.tree_util.tree_leaves", "jax.tree.leaves", "jax.tree_leaves"})
TREE_FLATTEN = frozenset({"jax.tree_util.tree_flatten", "jax.tree.flatten", "jax.tree_flatten"})
TREE_STRUCTURE = frozenset({"jax.tree_util.tree_structure", "jax.tree.structure", "jax.tree_structure"})


def leaves_of(ctx, expr) -> Optional[str]:
    """`tree_leaves(t)` or `tree_flatten(t)[0]` -> source of `t`."""
    if isinstance(expr, cst.Call) and ctx.qualname(expr.func) in TREE_LEAVES and expr.args:
        return ctx.code(expr.args[0].value)
    if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Call) and literal_index(expr) == 0:
        c = expr.value
        if ctx.qualname(c.func) in TREE_FLATTEN and c.args:
            return ctx.code(c.args[0].value)
    return None


def literal_index(expr: cst.Subscript) -> Optional[int]:
    if len(expr.slice) != 1 or not isinstance(expr.slice[0].slice, cst.Index):
        return None
    v = expr.slice[0].slice.value
    if isinstance(v, cst.Integer):
        return int(v.value, 0)
    return None
