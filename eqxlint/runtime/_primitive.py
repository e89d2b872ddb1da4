"""`define_primitive`: a JAX primitive whose every rule can be derived from one `impl`."""

import functools as ft
from collections.abc import Callable, Hashable
from typing import Any, Literal

import jax
import jax.extend.core
import jax.interpreters.ad as ad
import jax.interpreters.batching as _batching
import jax.interpreters.mlir as mlir
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike


_Derive = Literal["derive"]
_VMAP_PARAM = "_eqxlint_vmap"


class NonDifferentiableError(TypeError):
    """Raised when a primitive defined with `differentiable=False` is differentiated."""


def _shaped(x: Any) -> jax.core.ShapedArray:
    return jax.core.ShapedArray(x.shape, x.dtype)


def _to_struct(aval: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype)


class Primitive:
    """The object returned by [`define_primitive`][]. Calling it binds the primitive.

    **Attributes:**

    - `primitive`: the underlying `jax.extend.core.Primitive`. Identify the operation
      in a jaxpr by identity: `eqn.primitive is op.primitive`.
    - `name`: the primitive's name.
    - `impl`: the implementation it was defined from.
    - `multiple_results`, `differentiable`: as passed to [`define_primitive`][].
    - `linear_transpose`: whether a transpose rule is registered.
    """

    primitive: jax.extend.core.Primitive
    name: str
    impl: Callable[..., Any]
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
    ):
        self.primitive = primitive
        self.name = primitive.name
        self.impl = impl
        self.multiple_results = multiple_results
        self.differentiable = differentiable
        self.linear_transpose = transpose
        ft.update_wrapper(self, impl, updated=())

    def __call__(self, *args: ArrayLike, **params: Hashable) -> Any:
        """Bind the primitive to `args`. Keyword `params` are static: they must be
        hashable, and are passed on to `impl` and to every rule."""
        for k, v in params.items():
            if k == _VMAP_PARAM:
                raise ValueError(f"{_VMAP_PARAM!r} is a reserved parameter name")
            try:
                hash(v)
            except TypeError:
                raise TypeError(
                    f"primitive {self.name!r}: keyword parameter {k}={v!r} is not "
                    "hashable; keyword parameters are static (use a tuple instead of a "
                    "list, or pass arrays positionally)"
                ) from None
        args = tuple(
            x if isinstance(x, (jax.Array, jax.core.Tracer)) else jnp.asarray(x)
            for x in args
        )
        out = self.primitive.bind(*args, **params, **{_VMAP_PARAM: ()})
        return tuple(out) if self.multiple_results else out

    def __repr__(self) -> str:
        return f"<eqxlint.runtime primitive {self.name!r}>"


def _effective_impl(impl: Callable[..., Any], params: dict, levels: tuple) -> Callable:
    """`impl` with its static params bound, vmapped once per batching level."""
    fn = ft.partial(impl, **params)
    for in_axes, size in levels:
        fn = jax.vmap(fn, in_axes=in_axes, out_axes=0, axis_size=size)
    return fn


def define_primitive(
    name: str,
    impl: Callable[..., Any],
    *,
    jvp: _Derive | Callable[..., Any] = "derive",
    transpose: _Derive | Callable[..., Any] | None = "derive",
    batching: _Derive | Callable[..., Any] = "derive",
    differentiable: bool = True,
    multiple_results: bool = False,
) -> Primitive:
    """Define a new JAX primitive from one implementation function, deriving every rule
    JAX needs from it, or taking explicit rules that re-bind the primitive.

    `impl(*arrays, **params)` is ordinary JAX code taking positional arrays and static
    keyword parameters, returning an array (or a tuple of arrays when
    `multiple_results=True`). From it are derived:

    - abstract evaluation, via `jax.eval_shape(impl)` (so shapes and dtypes may differ
      from call to call);
    - the lowering (for `jit`), via `mlir.lower_fun(impl)`: the compiled HLO is that of
      `impl`;
    - the JVP, via `jax.jvp(impl)` (the primal output still comes from binding the
      primitive, so the primitive stays visible in the primal computation);
    - the transpose, for impls that are linear in their inputs, via
      `jax.linear_transpose(impl)`;
    - the batching rule, via `jax.vmap(impl)`: the batched call *re-binds the same
      primitive* (with the batching recorded in an internal parameter), so the
      primitive stays visible under `jax.vmap` too.

    **Arguments:**

    - `name`: the primitive's name (as shown in jaxprs).
    - `impl`: the implementation, as above.
    - `jvp`: `"derive"`, or an explicit rule
      `jvp(primals: tuple[Array, ...], tangents: tuple[Array, ...], **params) ->
      (primal_out, tangent_out)`. Tangents are always materialised arrays (symbolic
      zeros are instantiated). The rule may call the primitive again (approach B: keep
      the macro op intact under differentiation).
    - `transpose`: `"derive"`, `None` (no transpose rule: an error if one is needed),
      or an explicit rule `transpose(cotangent, *args, **params) -> tuple` returning
      one cotangent per positional argument. In `args`, the inputs the primitive is
      linear in are given as `jax.ShapeDtypeStruct`s and the others as arrays; return
      `None` for the latter. `cotangent` is a materialised array (a tuple of arrays
      for `multiple_results=True`).
    - `batching`: `"derive"`, or an explicit rule `batching(args: tuple[Array, ...],
      batch_axes: tuple[int | None, ...], **params) -> (out, out_axes)` (JAX's
      `batching.primitive_batchers` signature; `None` marks an unbatched argument).
      It may call the primitive again on the batched arrays.
    - `differentiable`: if `False`, any JVP, `grad` or `vjp` through the primitive
      raises [`NonDifferentiableError`][] naming it ("no grad support by design").
    - `multiple_results`: whether `impl` returns a tuple of arrays.

    **Returns:**

    A [`Primitive`][]: call it like `impl` (`op(x, y, scale=2.0)`) to bind the
    primitive; `op.primitive` is the `jax.extend.core.Primitive`, so
    `eqn.primitive is op.primitive` identifies it in a jaxpr.

    !!! Info

        Explicit rules receive only your own keyword parameters. When an explicit
        `jvp` meets a call that was batched by the *derived* batching rule, the rule is
        run under `jax.vmap`; when `transpose` is explicit, the derived batching rule
        falls back to `jax.vmap(impl)` (approach A: the primitive is inlined).
    """
    prim = jax.extend.core.Primitive(name)
    prim.multiple_results = multiple_results

    def _flat(out: Any) -> Any:
        if multiple_results:
            return list(out)
        return out

    def _impl(*args: Array, **params: Any) -> Any:
        levels = params.pop(_VMAP_PARAM)
        return _flat(_effective_impl(impl, params, levels)(*args))

    def _abstract_eval(*avals: Any, **params: Any) -> Any:
        levels = params.pop(_VMAP_PARAM)
        fn = _effective_impl(impl, params, levels)
        out = jax.eval_shape(fn, *[_to_struct(a) for a in avals])
        if multiple_results:
            return [_shaped(o) for o in out]
        return _shaped(out)

    prim.def_impl(_impl)
    prim.def_abstract_eval(_abstract_eval)
    mlir.register_lowering(prim, mlir.lower_fun(_impl, multiple_results=multiple_results))

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
            levels = params[_VMAP_PARAM]
            user = {k: v for k, v in params.items() if k != _VMAP_PARAM}
            tangents = [ad.instantiate_zeros(t) for t in tangents]
            primal_out = prim.bind(*primals, **params)
            fn = _effective_impl(impl, user, levels)
            _, tangent_out = jax.jvp(lambda *a: _flat(fn(*a)), tuple(primals), tuple(tangents))
            return primal_out, tangent_out

    elif callable(jvp):

        def _jvp_rule(primals, tangents, **params):
            levels = params[_VMAP_PARAM]
            user = {k: v for k, v in params.items() if k != _VMAP_PARAM}
            tangents = [ad.instantiate_zeros(t) for t in tangents]

            def _user_rule(ps, ts):
                p_out, t_out = jvp(tuple(ps), tuple(ts), **user)
                return _flat(p_out), _flat(t_out)

            fn = _user_rule
            for in_axes, size in levels:
                fn = jax.vmap(fn, in_axes=(list(in_axes), list(in_axes)), axis_size=size)
            return fn(list(primals), list(tangents))

    else:
        raise ValueError(f"jvp must be 'derive' or a callable, got {jvp!r}")
    ad.primitive_jvps[prim] = _jvp_rule

    # ---- transpose ----
    def _transpose_rule(cts, *args, **params):
        levels = params[_VMAP_PARAM]
        user = {k: v for k, v in params.items() if k != _VMAP_PARAM}
        linear = [ad.is_undefined_primal(a) for a in args]
        if multiple_results:
            cts = tuple(ad.instantiate_zeros(c) for c in cts)
        else:
            cts = ad.instantiate_zeros(cts)
        if transpose == "derive":
            fn = _effective_impl(impl, user, levels)
            defined = list(args)

            def _lin(*lin_args):
                it = iter(lin_args)
                full = [next(it) if l else a for a, l in zip(defined, linear)]
                out = fn(*full)
                return tuple(out) if multiple_results else out

            structs = [_to_struct(a.aval) for a, l in zip(args, linear) if l]
            try:
                t_fn = jax.linear_transpose(_lin, *structs)
                lin_cts = iter(t_fn(cts))
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
        shown = [_to_struct(a.aval) if l else a for a, l in zip(args, linear)]
        out = transpose(cts, *shown, **user)
        out = list(out)
        if len(out) != len(args):
            raise ValueError(
                f"primitive {name!r}: transpose rule returned {len(out)} cotangents for "
                f"{len(args)} arguments"
            )
        return [o if l else None for o, l in zip(out, linear)]

    if transpose is None:

        def _no_transpose(cts, *args, **params):
            raise TypeError(
                f"primitive {name!r} was defined with transpose=None but JAX needs to "
                "transpose it (reverse-mode differentiation through a JVP rule that "
                "re-binds it, or jax.linear_transpose)."
            )

        ad.primitive_transposes[prim] = _no_transpose
    elif transpose == "derive" or callable(transpose):
        ad.primitive_transposes[prim] = _transpose_rule
    else:
        raise ValueError(f"transpose must be 'derive', None or a callable, got {transpose!r}")

    # ---- batching ----
    if batching == "derive":
        rebind = transpose == "derive" or transpose is None

        def _batch_rule(args, batch_axes, **params):
            levels = params[_VMAP_PARAM]
            user = {k: v for k, v in params.items() if k != _VMAP_PARAM}
            sizes = {a.shape[b] for a, b in zip(args, batch_axes) if b is not None}
            (size,) = sizes
            axes = tuple(None if b is None else b for b in batch_axes)
            if rebind:
                out = prim.bind(*args, **user, **{_VMAP_PARAM: levels + ((axes, size),)})
            else:
                fn = _effective_impl(impl, user, levels + ((axes, size),))
                out = _flat(fn(*args))
            if multiple_results:
                return out, [0] * len(out)
            return out, 0

    elif callable(batching):

        def _batch_rule(args, batch_axes, **params):
            levels = params[_VMAP_PARAM]
            user = {k: v for k, v in params.items() if k != _VMAP_PARAM}
            if levels:
                raise NotImplementedError("internal error: levels with explicit batching")
            axes = tuple(None if b is None else b for b in batch_axes)
            out, out_axes = batching_rule(tuple(args), axes, **user)
            if multiple_results:
                return _flat(out), list(out_axes)
            return out, out_axes

        batching_rule = batching
    else:
        raise ValueError(f"batching must be 'derive' or a callable, got {batching!r}")
    _batching.primitive_batchers[prim] = _batch_rule

    return Primitive(prim, impl, multiple_results, differentiable, transpose is not None)
