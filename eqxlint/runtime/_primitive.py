"""`define_primitive`: a JAX primitive whose every rule can be derived from one `impl`."""

import dataclasses
import functools as ft
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal

import jax
import jax.extend.core
import jax.interpreters.ad as ad
import jax.interpreters.batching as _batching
import jax.interpreters.mlir as mlir
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, PyTree


_Derive = Literal["derive"]
# Internal parameters. Both are absent from a plain call, so a primitive met in a jaxpr
# can be re-bound as `eqn.primitive.bind(*eqn.invars, **eqn.params)` or with just the
# user's own parameters.
_RESERVED = "_eqxlint_"
_TREE_PARAM = "_eqxlint_tree"  # the PyTreeDef of the positional arguments (PyTree args only)
_VMAP_PARAM = "_eqxlint_vmap"  # the derived batching levels, innermost first

# Lowering platforms: the names `mlir.register_lowering` knows, plus "gpu" for both.
_PLATFORM_ALIASES = {"gpu": ("cuda", "rocm")}
_PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
_DEFAULT_BACKEND_PLATFORMS = {"cpu": ("cpu",), "gpu": ("cuda", "rocm"), "tpu": ("tpu",)}

# Every primitive made by `define_primitive`, so that `check_primitive(op.primitive)`
# (a user who meets the primitive in a jaxpr) finds its `impl` and `lowering`.
_DEFINED: "dict[jax.extend.core.Primitive, Primitive]" = {}


class NonDifferentiableError(TypeError):
    """Raised when a primitive defined with `differentiable=False` is differentiated."""


class PrimitiveRuleError(TypeError):
    """Raised when `impl`, `lowering` or an explicit rule of a primitive returns something
    of the wrong structure, shape or dtype. The message names the primitive and the rule.
    """


@dataclasses.dataclass(frozen=True)
class _Level:
    """One derived batching level: `jax.vmap(..., in_axes, axis_size=size,
    axis_name=name, spmd_axis_name=spmd_name)` over the flat arguments."""

    in_axes: tuple[int | None, ...]
    size: int
    name: Hashable | None = None
    spmd_name: Any = None

    def __repr__(self) -> str:  # shown in jaxprs
        extra = "" if self.name is None else f", name={self.name!r}"
        extra += "" if self.spmd_name is None else f", spmd_name={self.spmd_name!r}"
        return f"vmap(in_axes={self.in_axes}, size={self.size}{extra})"


def _split_params(params: Mapping[str, Any]) -> tuple[dict, Any, tuple[_Level, ...]]:
    user = {k: v for k, v in params.items() if not k.startswith(_RESERVED)}
    return user, params.get(_TREE_PARAM), params.get(_VMAP_PARAM, ())


def _unflatten_args(in_tree: Any, leaves: Sequence[Any]) -> tuple:
    if in_tree is None:
        return tuple(leaves)
    return tuple(jtu.tree_unflatten(in_tree, list(leaves)))


def _is_arraylike(x: Any) -> bool:
    return isinstance(x, (jax.Array, jax.core.Tracer, np.ndarray, np.generic))


def _describe(x: Any) -> str:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"{jnp.dtype(x.dtype).name}{list(x.shape)}"
    return f"{type(x).__name__} {x!r}"


def _vmapped(fn: Callable[..., list], levels: tuple[_Level, ...]) -> Callable[..., list]:
    """`fn` (flat leaves -> list of leaves) vmapped once per derived batching level."""
    for lvl in levels:
        fn = jax.vmap(
            fn,
            in_axes=lvl.in_axes,
            out_axes=0,
            axis_size=lvl.size,
            axis_name=lvl.name,
            spmd_axis_name=lvl.spmd_name,
        )
    return fn


def _tangent_dtype(dtype: Any) -> Any:
    if jnp.issubdtype(dtype, jnp.inexact):
        return jnp.dtype(dtype)
    return jax.dtypes.float0


class Primitive:
    """The object returned by [`define_primitive`][]. Calling it binds the primitive.

    **Attributes:**

    - `primitive`: the underlying `jax.extend.core.Primitive`. Identify the operation
      in a jaxpr by identity: `eqn.primitive is op.primitive`.
    - `name`: the primitive's name.
    - `impl`: the implementation it was defined from (the reference).
    - `lowering`: a dict from platform (`"cpu"`, `"cuda"`, `"rocm"`, `"tpu"`) to the
      function lowered in place of `impl` on that platform (empty: `impl` everywhere).
    - `multiple_results`, `differentiable`: as passed to [`define_primitive`][].
    - `linear_transpose`: whether a transpose rule is registered.
    """

    primitive: jax.extend.core.Primitive
    name: str
    impl: Callable[..., Any]
    lowering: dict[str, Callable[..., Any]]
    multiple_results: bool
    differentiable: bool
    linear_transpose: bool

    def __init__(
        self,
        primitive: jax.extend.core.Primitive,
        impl: Callable[..., Any],
        multiple_results: bool,
        differentiable: bool,
        transpose: bool,
        lowering: dict[str, Callable[..., Any]] | None = None,
    ):
        self.primitive = primitive
        self.name = primitive.name
        self.impl = impl
        self.lowering = dict(lowering or {})
        self.multiple_results = multiple_results
        self.differentiable = differentiable
        self.linear_transpose = transpose
        self._out_trees: dict[Any, Any] = {}
        ft.update_wrapper(self, impl, updated=())

    def _flatten_call(self, args: tuple, params: dict) -> tuple[list, dict, Any]:
        for k, v in params.items():
            if k.startswith(_RESERVED):
                raise ValueError(
                    f"primitive {self.name!r}: parameter names starting with "
                    f"{_RESERVED!r} are reserved"
                )
            try:
                hash(v)
            except TypeError:
                raise TypeError(
                    f"primitive {self.name!r}: keyword parameter {k}={v!r} is not "
                    "hashable; keyword parameters are static (use a tuple instead of a "
                    "list, or pass arrays positionally)"
                ) from None
        leaves, in_tree = jtu.tree_flatten(args)
        flat = []
        for i, x in enumerate(leaves):
            if isinstance(x, (jax.Array, jax.core.Tracer)):
                flat.append(x)
            elif _is_arraylike(x) or isinstance(x, (bool, int, float, complex)):
                flat.append(jnp.asarray(x))
            else:
                raise TypeError(
                    f"primitive {self.name!r}: positional arguments must be arrays or "
                    f"PyTrees of arrays, but leaf {i} is {_describe(x)}; pass static "
                    "values as keyword parameters"
                )
        bind_params = dict(params)
        if in_tree != jtu.tree_structure((0,) * len(args)):
            bind_params[_TREE_PARAM] = in_tree
        return flat, bind_params, in_tree

    def _out_tree(self, in_tree: Any, flat: list, params: dict) -> Any:
        key = (
            in_tree,
            tuple((jnp.shape(x), jnp.result_type(x)) for x in flat),
            tuple(sorted(params.items(), key=lambda kv: kv[0])),
        )
        try:
            return self._out_trees[key]
        except KeyError:
            pass
        structs = [jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)) for x in flat]
        out = jax.eval_shape(
            lambda *xs: self.impl(*jtu.tree_unflatten(in_tree, list(xs)), **params), *structs
        )
        tree = jtu.tree_structure(out)
        self._out_trees[key] = tree
        return tree

    def __call__(self, *args: PyTree[Array], **params: Hashable) -> Any:
        """Bind the primitive to `args` (arrays or PyTrees of arrays). Keyword `params`
        are static: they must be hashable, and are passed on to `impl` and to every
        rule."""
        flat, bind_params, in_tree = self._flatten_call(args, params)
        out = self.primitive.bind(*flat, **bind_params)
        if not self.multiple_results:
            return out
        return jtu.tree_unflatten(self._out_tree(in_tree, flat, params), list(out))

    def __repr__(self) -> str:
        return f"<eqxlint.runtime primitive {self.name!r}>"


def _normalise_lowering(
    name: str, lowering: Callable[..., Any] | Mapping[str, Callable[..., Any]] | None
) -> dict[str, Callable[..., Any]]:
    if lowering is None:
        return {}
    if callable(lowering):
        return {p: lowering for p in _PLATFORMS}
    if not isinstance(lowering, Mapping):
        raise TypeError(
            f"primitive {name!r}: lowering must be a function or a dict from platform to "
            f"function, got {lowering!r}"
        )
    out: dict[str, Callable[..., Any]] = {}
    for platform, fn in lowering.items():
        if not callable(fn):
            raise TypeError(f"primitive {name!r}: lowering[{platform!r}] is not callable")
        targets = _PLATFORM_ALIASES.get(platform, (platform,))
        for p in targets:
            if p not in _PLATFORMS:
                raise ValueError(
                    f"primitive {name!r}: unknown lowering platform {platform!r}; use "
                    f"one of {', '.join(map(repr, _PLATFORMS + ('gpu',)))}"
                )
            out[p] = fn
    return out


def define_primitive(
    name: str,
    impl: Callable[..., Any],
    *,
    jvp: _Derive | Callable[..., Any] = "derive",
    transpose: _Derive | Callable[..., Any] | None = "derive",
    batching: _Derive | Callable[..., Any] = "derive",
    lowering: Callable[..., Any] | Mapping[str, Callable[..., Any]] | None = None,
    differentiable: bool = True,
    multiple_results: bool = False,
) -> Primitive:
    """Define a new JAX primitive from one implementation function, deriving every rule
    JAX needs from it, or taking explicit rules that re-bind the primitive.

    `impl(*args, **params)` is ordinary JAX code taking positional arrays (or PyTrees of
    arrays: they are flattened into the primitive's operands) and static keyword
    parameters, returning an array (or, when `multiple_results=True`, any PyTree of
    arrays: a tuple, a dict, ...). `impl` is the **reference**: from it are derived

    - abstract evaluation, by tracing `impl` on the incoming abstract values themselves
      (so weak types and `shard_map`'s varying axes are kept, and shapes and dtypes may
      differ from call to call);
    - the lowering (for `jit`), via `mlir.lower_fun(impl)`, unless `lowering` is given;
    - the JVP, via `jax.jvp(impl)` (the primal output still comes from binding the
      primitive, so the primitive stays visible in the primal computation);
    - the transpose, for impls that are linear in their inputs, via
      `jax.linear_transpose(impl)`;
    - the batching rule, via `jax.vmap(impl)`: the batched call *re-binds the same
      primitive* (with the batching, including `axis_name` and `spmd_axis_name`,
      recorded in an internal parameter), so the primitive stays visible under
      `jax.vmap` too.

    Everything `impl`, `lowering` and the explicit rules return is validated (structure,
    shapes, dtypes); a mismatch raises [`PrimitiveRuleError`][] naming the primitive and
    the rule.

    **Arguments:**

    - `name`: the primitive's name (as shown in jaxprs).
    - `impl`: the implementation, as above.
    - `jvp`: `"derive"`, or an explicit rule
      `jvp(primals: tuple, tangents: tuple, **params) -> (primal_out, tangent_out)`,
      `primals` and `tangents` being the positional arguments (PyTrees as passed).
      Tangents are materialised arrays (symbolic zeros are instantiated; integer
      arguments get `float0` tangents). The rule may call the primitive again.
    - `transpose`: `"derive"`, `None` (no transpose rule: an error if one is needed),
      or an explicit rule `transpose(cotangent, *args, **params) -> tuple` returning
      one cotangent per positional argument. In `args`, the leaves the primitive is
      linear in are given as `jax.ShapeDtypeStruct`s and the others as arrays; return
      `None` for an argument (or a leaf) that is not being transposed. `cotangent` is
      materialised and shaped like `impl`'s output.
    - `batching`: `"derive"`, or an explicit rule `batching(args: tuple, batch_axes:
      tuple, **params) -> (out, out_axes)` (JAX's `batching.primitive_batchers`
      signature, with `batch_axes` shaped like `args` and `None` for an unbatched
      leaf; `out_axes` an int for every output or a PyTree like `out`). It may call
      the primitive again on the batched arrays.
    - `lowering`: `None` (lower `impl`), a function, or a dict from platform
      (`"cpu"`, `"cuda"`, `"rocm"`, `"tpu"`, or `"gpu"` for both GPU platforms) to a
      function. Each has `impl`'s signature and is lowered with `mlir.lower_fun` in
      place of `impl` on its platform(s): a different JAX formulation, a Pallas kernel
      (`pl.pallas_call(...)`), or an FFI call (`jax.ffi.ffi_call(...)`). Eager calls
      run it too (compiled). It must agree with `impl` (which stays the reference the
      JVP, transpose and batching rules are derived from): `check_primitive` compares
      the two. Under the derived batching rule it is run under `jax.vmap`.
    - `differentiable`: if `False`, any JVP, `grad` or `vjp` through the primitive
      raises [`NonDifferentiableError`][] naming it ("no grad support by design").
    - `multiple_results`: whether `impl` returns a PyTree of arrays (`True`) or a
      single array (`False`).

    **Returns:**

    A [`Primitive`][]: call it like `impl` (`op(x, y, scale=2.0)`) to bind the
    primitive; `op.primitive` is the `jax.extend.core.Primitive`, so
    `eqn.primitive is op.primitive` identifies it in a jaxpr, and
    `op.primitive.bind(*eqn.invars, **eqn.params)` re-binds it.

    !!! Info

        Explicit rules receive only your own keyword parameters. When an explicit
        `jvp` meets a call that was batched by the *derived* batching rule, the rule is
        run under `jax.vmap`; when `transpose` is explicit, the derived batching rule
        falls back to `jax.vmap(impl)` (approach A: the primitive is inlined).
    """
    if jvp != "derive" and not callable(jvp):
        raise ValueError(f"jvp must be 'derive' or a callable, got {jvp!r}")
    if transpose is not None and transpose != "derive" and not callable(transpose):
        raise ValueError(f"transpose must be 'derive', None or a callable, got {transpose!r}")
    if batching != "derive" and not callable(batching):
        raise ValueError(f"batching must be 'derive' or a callable, got {batching!r}")
    lowerings = _normalise_lowering(name, lowering)

    prim = jax.extend.core.Primitive(name)
    prim.multiple_results = multiple_results

    def _err(rule: str, msg: str) -> PrimitiveRuleError:
        return PrimitiveRuleError(f"primitive {name!r}: {rule} {msg}")

    def _flatten_out(out: Any, rule: str) -> list:
        """Validate what `impl`/`lowering`/a rule returned as a primal output."""
        if multiple_results:
            leaves = jtu.tree_leaves(out)
            for i, x in enumerate(leaves):
                if not (_is_arraylike(x) or isinstance(x, (bool, int, float, complex))):
                    raise _err(rule, f"returned a non-array output leaf {i}: {_describe(x)}")
            return [jnp.asarray(x) for x in leaves]
        if isinstance(out, (tuple, list, dict)):
            raise _err(
                rule,
                f"returned a {type(out).__name__} ({len(out)} entries) but the primitive "
                "was defined with multiple_results=False: return one array, or pass "
                "multiple_results=True to define_primitive",
            )
        if not (_is_arraylike(out) or isinstance(out, (bool, int, float, complex))):
            raise _err(rule, f"returned {_describe(out)}; expected an array")
        return [jnp.asarray(out)]

    def _flat(fn: Callable[..., Any], user: dict, in_tree: Any, rule: str) -> Callable:
        def flat(*leaves):
            return _flatten_out(fn(*_unflatten_args(in_tree, leaves), **user), rule)

        return flat

    def _ret(out: list) -> Any:
        return list(out) if multiple_results else out[0]

    def _check_like(rule: str, what: str, got: list, want: list, *, tangent: bool = False):
        if len(got) != len(want):
            raise _err(rule, f"returned {len(got)} {what} leaves; expected {len(want)}")
        for i, (g, w) in enumerate(zip(got, want)):
            wdtype = _tangent_dtype(w.dtype) if tangent else jnp.dtype(w.dtype)
            if tuple(g.shape) != tuple(w.shape) or jnp.dtype(g.dtype) != wdtype:
                raise _err(
                    rule,
                    f"returned {what} leaf {i} of type {_describe(g)}; expected "
                    f"{jnp.dtype(wdtype).name}{list(w.shape)}",
                )

    # ---- abstract evaluation: trace impl on the incoming avals themselves ----
    def _abstract_eval(*avals: Any, **params: Any) -> Any:
        user, in_tree, levels = _split_params(params)
        fn = _vmapped(_flat(impl, user, in_tree, "impl"), levels)
        out_avals = jax.make_jaxpr(fn)(*avals).out_avals
        return _ret(out_avals)

    # ---- evaluation and lowering ----
    def _lowering_fun(fn: Callable[..., Any], rule: str) -> Callable:
        def lowered(*leaves: Array, **params: Any) -> Any:
            user, in_tree, levels = _split_params(params)
            return _ret(_vmapped(_flat(fn, user, in_tree, rule), levels)(*leaves))

        return lowered

    _impl_lowered = _lowering_fun(impl, "impl")
    if lowerings:
        # Eager calls run the compiled lowering, as jit would: the lowering is what the
        # user ships. `impl` is still reachable as `op.impl`.
        _compiled = jax.jit(
            lambda leaves, items: prim.bind(*leaves, **dict(items)), static_argnums=1
        )

        def _impl_rule(*leaves: Array, **params: Any) -> Any:
            if jax.config.jax_disable_jit:  # jit would call straight back into here
                here = _DEFAULT_BACKEND_PLATFORMS.get(jax.default_backend(), ())
                fn = next((lowerings[p] for p in here if p in lowerings), impl)
                return _lowering_fun(fn, "lowering")(*leaves, **params)
            return _compiled(leaves, tuple(params.items()))

    else:
        _impl_rule = _impl_lowered
    prim.def_impl(_impl_rule)
    prim.def_abstract_eval(_abstract_eval)
    mlir.register_lowering(prim, mlir.lower_fun(_impl_lowered, multiple_results=multiple_results))

    def _checked_lowering(platform: str, fn: Callable[..., Any]) -> Callable:
        rule = f"lowering[{platform!r}]"
        lowered = _lowering_fun(fn, rule)

        def checked(*leaves: Array, **params: Any) -> Any:
            out = lowered(*leaves, **params)
            got = list(out) if multiple_results else [out]
            want = _abstract_eval(*[jax.typeof(x) for x in leaves], **params)
            want = list(want) if multiple_results else [want]
            _check_like(rule, "output", got, want)
            return out

        return mlir.lower_fun(checked, multiple_results=multiple_results)

    for platform, fn in lowerings.items():
        mlir.register_lowering(prim, _checked_lowering(platform, fn), platform=platform)

    # ---- JVP ----
    if not differentiable:

        def _jvp_rule(primals, tangents, **params):
            raise NonDifferentiableError(
                f"primitive {name!r} was defined with differentiable=False (no "
                "gradient support by design) and cannot be differentiated: it was "
                "reached by jax.jvp/jax.grad/jax.vjp. Wrap its inputs in "
                "jax.lax.stop_gradient if no derivative is needed."
            )

    elif jvp == "derive":

        def _jvp_rule(primals, tangents, **params):
            user, in_tree, levels = _split_params(params)
            tangents = [ad.instantiate_zeros(t) for t in tangents]
            primal_out = prim.bind(*primals, **params)
            fn = _vmapped(_flat(impl, user, in_tree, "impl"), levels)
            _, tangent_out = jax.jvp(fn, tuple(primals), tuple(tangents))
            return primal_out, _ret(tangent_out)

    else:

        def _jvp_rule(primals, tangents, **params):
            user, in_tree, levels = _split_params(params)
            tangents = [ad.instantiate_zeros(t) for t in tangents]

            def _user_rule(ps, ts):
                expected = jax.eval_shape(_flat(impl, user, in_tree, "impl"), *ps)
                p_out, t_out = _call_jvp(ps, ts, user, in_tree)
                flat_p = _flatten_out(p_out, "jvp rule (primal output)")
                _check_like("jvp rule", "primal output", flat_p, expected)
                t_leaves, t_tree = jtu.tree_flatten(t_out)
                p_tree = jtu.tree_structure(p_out)
                if t_tree != p_tree:
                    raise _err(
                        "jvp rule",
                        f"returned a tangent output of structure {t_tree}; expected the "
                        f"primal output's structure {p_tree}",
                    )
                flat_t = [jnp.asarray(t) for t in t_leaves]
                _check_like("jvp rule", "tangent output", flat_t, expected, tangent=True)
                return flat_p, flat_t

            fn = _user_rule
            for lvl in levels:
                axes = list(lvl.in_axes)
                fn = jax.vmap(
                    fn,
                    in_axes=(axes, axes),
                    axis_size=lvl.size,
                    axis_name=lvl.name,
                    spmd_axis_name=lvl.spmd_name,
                )
            p_out, t_out = fn(list(primals), list(tangents))
            return _ret(p_out), _ret(t_out)

        def _call_jvp(ps, ts, user, in_tree):
            out = jvp(_unflatten_args(in_tree, ps), _unflatten_args(in_tree, ts), **user)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise _err("jvp rule", "must return a pair (primal_out, tangent_out)")
            return out

    ad.primitive_jvps[prim] = _jvp_rule

    # ---- transpose ----
    def _transpose_rule(cts, *args, **params):
        user, in_tree, levels = _split_params(params)
        linear = [ad.is_undefined_primal(a) for a in args]
        cts = [ad.instantiate_zeros(c) for c in cts] if multiple_results else [ad.instantiate_zeros(cts)]
        if transpose == "derive":
            fn = _vmapped(_flat(impl, user, in_tree, "impl"), levels)

            def _lin(*lin_args):
                it = iter(lin_args)
                return fn(*[next(it) if l else a for a, l in zip(args, linear)])

            structs = [a.aval for a, l in zip(args, linear) if l]
            try:
                t_fn = jax.linear_transpose(_lin, *structs)
                lin_cts = iter(t_fn(list(cts)))
            except Exception as e:  # noqa: BLE001
                raise TypeError(
                    f"primitive {name!r}: could not derive a transpose rule with "
                    "jax.linear_transpose (is impl linear in the arguments being "
                    "transposed?). Pass transpose=<callable> or transpose=None."
                ) from e
            return [next(lin_cts) if l else None for l in linear]
        if levels:
            raise NotImplementedError(
                f"primitive {name!r}: explicit transpose rules are not run under the "
                "derived batching rule (internal error)"
            )
        shown = [_struct(a.aval) if l else a for a, l in zip(args, linear)]
        shown_args = _unflatten_args(in_tree, shown)
        if multiple_results:
            structs = _unflatten_args(in_tree, [_struct(_aval(a)) for a in args])
            out_tree = jtu.tree_structure(jax.eval_shape(lambda *xs: impl(*xs, **user), *structs))
            ct_arg = jtu.tree_unflatten(out_tree, list(cts))
        else:
            ct_arg = cts[0]
        out = transpose(ct_arg, *shown_args, **user)
        if not isinstance(out, (tuple, list)) or len(out) != len(shown_args):
            got = len(out) if isinstance(out, (tuple, list)) else type(out).__name__
            raise _err(
                "transpose rule",
                f"returned {got} cotangents; expected a tuple of {len(shown_args)} (one "
                "per positional argument, None for those not transposed)",
            )
        flat_cts = []
        for i, (o, a) in enumerate(zip(out, shown_args)):
            a_tree = jtu.tree_structure(a)
            if o is None:
                flat_cts.extend([None] * a_tree.num_leaves)
                continue
            try:
                flat_cts.extend(a_tree.flatten_up_to(o))
            except (ValueError, TypeError):
                raise _err(
                    "transpose rule",
                    f"returned a cotangent for argument {i} whose structure does not "
                    f"match the argument's ({a_tree})",
                ) from None
        result = []
        for i, (c, a, l) in enumerate(zip(flat_cts, args, linear)):
            if not l or c is None:
                result.append(None)
                continue
            c = jnp.asarray(c)
            want = a.aval
            if tuple(c.shape) != tuple(want.shape) or jnp.dtype(c.dtype) != jnp.dtype(want.dtype):
                raise _err(
                    "transpose rule",
                    f"returned a cotangent of type {_describe(c)} for operand {i} of type "
                    f"{jnp.dtype(want.dtype).name}{list(want.shape)}",
                )
            result.append(c)
        return result

    if transpose is None:

        def _no_transpose(cts, *args, **params):
            raise TypeError(
                f"primitive {name!r} was defined with transpose=None but JAX needs to "
                "transpose it (reverse-mode differentiation through a JVP rule that "
                "re-binds it, or jax.linear_transpose)."
            )

        ad.primitive_transposes[prim] = _no_transpose
    else:
        ad.primitive_transposes[prim] = _transpose_rule

    # ---- batching ----
    def _axis(axis_data: Any) -> tuple[int, Any, Any]:
        # An unnamed vmap axis carries JAX's private sentinel object: record None.
        axis_name = axis_data.name
        if type(axis_name) is object:
            axis_name = None
        return axis_data.size, axis_name, getattr(axis_data, "spmd_name", None)

    if batching == "derive":
        rebind = transpose == "derive" or transpose is None

        def _batch_rule(axis_data, args, batch_axes, **params):
            if all(b is None for b in batch_axes):
                out = prim.bind(*args, **params)
                return out, ([None] * len(out) if multiple_results else None)
            user, in_tree, levels = _split_params(params)
            size, axis_name, spmd_name = _axis(axis_data)
            levels = levels + (_Level(tuple(batch_axes), size, axis_name, spmd_name),)
            if rebind:
                out = prim.bind(*args, **{**params, _VMAP_PARAM: levels})
            else:
                out = _ret(_vmapped(_flat(impl, user, in_tree, "impl"), levels)(*args))
            if multiple_results:
                return out, [0] * len(out)
            return out, 0

    else:

        def _batch_rule(axis_data, args, batch_axes, **params):
            if all(b is None for b in batch_axes):
                out = prim.bind(*args, **params)
                return out, ([None] * len(out) if multiple_results else None)
            user, in_tree, levels = _split_params(params)
            if levels:
                raise NotImplementedError("internal error: levels with explicit batching")
            size = axis_data.size
            res = batching(_unflatten_args(in_tree, args), _unflatten_args(in_tree, list(batch_axes)), **user)
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise _err("batching rule", "must return a pair (out, out_axes)")
            out, out_axes = res
            flat_out = _flatten_out(out, "batching rule")
            if multiple_results and not isinstance(out_axes, int) and out_axes is not None:
                try:
                    flat_axes = jtu.tree_structure(out).flatten_up_to(out_axes)
                except (ValueError, TypeError):
                    raise _err(
                        "batching rule",
                        f"returned out_axes {out_axes!r} that do not match the outputs' "
                        "structure; give an int, or a PyTree like the outputs",
                    ) from None
            else:
                flat_axes = [out_axes] * len(flat_out)
            unbatched = []
            for x, b in zip(args, batch_axes):
                shape = list(jnp.shape(x))
                if b is not None:
                    del shape[b]
                unbatched.append(jax.ShapeDtypeStruct(tuple(shape), jnp.result_type(x)))
            expected = jax.eval_shape(_flat(impl, user, in_tree, "impl"), *unbatched)
            if len(flat_out) != len(expected):
                raise _err("batching rule", f"returned {len(flat_out)} outputs; expected {len(expected)}")
            for i, (o, ax, e) in enumerate(zip(flat_out, flat_axes, expected)):
                if ax is not None and not isinstance(ax, (int, np.integer)):
                    raise _err("batching rule", f"returned out_axes {ax!r} for output {i}; expected an int or None")
                shape = list(o.shape)
                ok = True
                if ax is not None:
                    ok = o.ndim > 0 and -o.ndim <= int(ax) < o.ndim
                    if ok:
                        ax = int(ax) % o.ndim
                        ok = shape[ax] == size
                        del shape[ax]
                if not ok or tuple(shape) != tuple(e.shape) or jnp.dtype(o.dtype) != jnp.dtype(e.dtype):
                    raise _err(
                        "batching rule",
                        f"returned output {i} of type {_describe(o)} with batch axis {ax}; "
                        f"expected {jnp.dtype(e.dtype).name}{list(e.shape)} batched to size "
                        f"{size}",
                    )
            flat_axes = [None if a is None else int(a) for a in flat_axes]
            if multiple_results:
                return flat_out, flat_axes
            return flat_out[0], flat_axes[0]

    _batching.fancy_primitive_batchers[prim] = _batch_rule

    op = Primitive(prim, impl, multiple_results, differentiable, transpose is not None, lowerings)
    _DEFINED[prim] = op
    return op


def _aval(x: Any) -> Any:
    return x.aval if ad.is_undefined_primal(x) else jax.typeof(x)


def _struct(aval: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype)
