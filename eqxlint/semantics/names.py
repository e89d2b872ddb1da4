"""What eqxlint knows about JAX and Equinox APIs: qualified names, never imports.

Every table maps a canonical qualified name (after import aliases and re-export paths are
resolved) to what the engine or rules need to know about it.
"""

from __future__ import annotations

# Re-export paths that name the same object. Resolution replaces the longest matching prefix.
CANONICAL_PREFIXES = {
    "jax._src.api": "jax",
    "jax.api": "jax",
    "jax._src.lax.lax": "jax.lax",
    "jax._src.lax.control_flow": "jax.lax",
    "jax._src.lax.control_flow.loops": "jax.lax",
    "jax._src.lax.control_flow.conditionals": "jax.lax",
    "jax._src.random": "jax.random",
    "jax._src.core": "jax.core",
    "jax.extend.core": "jax.core",
    "jax._src.interpreters.ad": "jax.interpreters.ad",
    "jax._src.interpreters.batching": "jax.interpreters.batching",
    "jax._src.interpreters.mlir": "jax.interpreters.mlir",
    "jax._src.ad_checkpoint": "jax",
    "jax.ad_checkpoint": "jax",
    "jax._src.custom_derivatives": "jax",
    "jax.custom_derivatives": "jax",
    "jax.experimental.pjit": "jax",
    "jax.experimental.shard_map": "jax",
    "jax._src.debugging": "jax.debug",
    "jax.experimental.host_callback": "jax.experimental.host_callback",
    "equinox._jit": "equinox",
    "equinox._vmap_pmap": "equinox",
    "equinox._ad": "equinox",
    "equinox._module": "equinox",
    "equinox._eval_shape": "equinox",
    "equinox._callback": "equinox",
    "equinox._errors": "equinox",
    "equinox._filters": "equinox",
    "equinox._shard_map": "equinox",
    "equinox._closure_conversion": "equinox",
    "equinox._enum": "equinox",
    "equinox.internal._loop": "equinox.internal",
    "equinox.internal._loop.loop": "equinox.internal",
    "equinox.internal._primitive": "equinox.internal",
    "equinox.internal._nontraceable": "equinox.internal",
    "jax.experimental.checkify": "jax.experimental.checkify",
    "pjit": "jax.jit",
}
# Single names that are renamed (after prefix canonicalisation).
CANONICAL_NAMES = {
    "jax.pjit": "jax.jit",
    "jax.remat": "jax.checkpoint",
    "jax.core.Primitive": "jax.core.Primitive",
    "jax.experimental.shard_map": "jax.shard_map",
    "equinox.internal.scan": "equinox.internal.scan",
    "equinox.Module": "equinox.Module",
}

# Transforms whose function arguments JAX traces: qualname -> ((position, keyword), ...).
_F0 = ((0, "fun"),)
TRANSFORMS: dict[str, tuple] = {
    "jax.jit": _F0,
    "jax.pmap": _F0,
    "jax.vmap": _F0,
    "jax.grad": _F0,
    "jax.value_and_grad": _F0,
    "jax.jacfwd": _F0,
    "jax.jacrev": _F0,
    "jax.jacobian": _F0,
    "jax.hessian": _F0,
    "jax.jvp": _F0,
    "jax.vjp": _F0,
    "jax.linearize": _F0,
    "jax.checkpoint": _F0,
    "jax.eval_shape": _F0,
    "jax.make_jaxpr": _F0,
    "jax.named_call": _F0,
    "jax.shard_map": ((0, "f"),),
    "jax.xmap": _F0,
    "jax.lax.scan": ((0, "f"),),
    "jax.lax.map": ((0, "f"),),
    "jax.lax.associative_scan": ((0, "fn"),),
    "jax.lax.while_loop": ((0, "cond_fun"), (1, "body_fun")),
    "jax.lax.fori_loop": ((2, "body_fun"),),
    "jax.lax.cond": ((1, "true_fun"), (2, "false_fun")),
    "jax.lax.switch": ((1, "branches"),),
    "jax.lax.custom_root": ((0, "f"), (2, "solve"), (3, "tangent_solve")),
    "jax.lax.custom_linear_solve": ((0, "matvec"), (2, "solve"), (3, "transpose_solve")),
    "jax.experimental.checkify.checkify": _F0,
    "equinox.filter_jit": _F0,
    "equinox.filter_vmap": _F0,
    "equinox.filter_pmap": _F0,
    "equinox.filter_grad": _F0,
    "equinox.filter_value_and_grad": _F0,
    "equinox.filter_jvp": _F0,
    "equinox.filter_vjp": _F0,
    "equinox.filter_jacfwd": _F0,
    "equinox.filter_jacrev": _F0,
    "equinox.filter_hessian": _F0,
    "equinox.filter_checkpoint": _F0,
    "equinox.filter_eval_shape": _F0,
    "equinox.filter_make_jaxpr": _F0,
    "equinox.filter_shard_map": _F0,
    "equinox.filter_closure_convert": _F0,
    "equinox.internal.while_loop": ((0, "cond_fun"), (1, "body_fun")),
    "equinox.internal.scan": ((0, "f"),),
    "equinox.internal.filter_vmap": _F0,
}

# How many positional arguments a lax loop passes to the function it traces (`f(carry, x)`,
# `body_fun(i, val)`, `cond_fun(val)`): parameters past these keep their defaults.
LAX_BODY_ARITY: dict[str, int] = {
    "jax.lax.scan": 2, "jax.lax.map": 1, "jax.lax.associative_scan": 2, "jax.lax.while_loop": 1,
    "jax.lax.fori_loop": 2, "equinox.internal.while_loop": 1, "equinox.internal.scan": 2,
}

# How each transform treats the function it traces (checked against JAX 0.10: which of a
# function's parameters fail `bool(...)` under it, and whether jnp/lax operations on constants
# are staged out). `eqxlint.semantics.tracing` reads these.
#   jit:       every non-static parameter is a tracer, and every operation is staged;
#   vmap:      every mapped parameter is a tracer (no staging of constants);
#   fjit:      Equinox-filtered (or array-only) jit-like: only array parameters are tracers; staged;
#   fvmap:     Equinox-filtered vmap: only array parameters are tracers;
#   ad:        differentiation on its own (`grad`, `jvp`, ...): parameters keep concrete values,
#              so Python control flow works; the function is still traced code (RULES.md);
#   pass:      wrappers that only name or transport the function.
TRANSFORM_KIND: dict[str, str] = {
    "jax.jit": "jit", "jax.pmap": "jit", "jax.checkpoint": "jit", "jax.eval_shape": "jit",
    "jax.make_jaxpr": "jit", "jax.shard_map": "jit", "jax.xmap": "jit",
    "jax.lax.scan": "jit", "jax.lax.map": "jit", "jax.lax.associative_scan": "jit",
    "jax.lax.while_loop": "jit", "jax.lax.fori_loop": "jit", "jax.lax.cond": "jit",
    "jax.lax.switch": "jit", "jax.lax.custom_root": "jit", "jax.lax.custom_linear_solve": "jit",
    "jax.closure_convert": "jit", "equinox.internal.while_loop": "jit",
    "equinox.internal.scan": "jit",
    "jax.vmap": "vmap",
    "equinox.filter_jit": "fjit", "equinox.filter_pmap": "fjit",
    "equinox.filter_checkpoint": "fjit", "equinox.filter_eval_shape": "fjit",
    "equinox.filter_make_jaxpr": "fjit", "equinox.filter_shard_map": "fjit",
    "equinox.filter_closure_convert": "fjit", "jax.experimental.checkify.checkify": "fjit",
    "equinox.filter_vmap": "fvmap", "equinox.internal.filter_vmap": "fvmap",
    "jax.grad": "ad", "jax.value_and_grad": "ad", "jax.jacfwd": "ad", "jax.jacrev": "ad",
    "jax.jacobian": "ad", "jax.hessian": "ad", "jax.jvp": "ad", "jax.vjp": "ad",
    "jax.linearize": "ad", "equinox.filter_grad": "ad", "equinox.filter_value_and_grad": "ad",
    "equinox.filter_jvp": "ad", "equinox.filter_vjp": "ad", "equinox.filter_jacfwd": "ad",
    "equinox.filter_jacrev": "ad", "equinox.filter_hessian": "ad",
    "jax.named_call": "pass",
}
# Transforms whose result is called with the traced function's own arguments (`jax.jit(f)(x)`);
# the others call it themselves (lax bodies, `jax.jvp(f, primals, tangents)`).
WRAPPERS = frozenset(
    {
        "jax.jit", "jax.pmap", "jax.checkpoint", "jax.make_jaxpr", "jax.shard_map", "jax.xmap",
        "jax.vmap", "jax.grad", "jax.value_and_grad", "jax.jacfwd", "jax.jacrev", "jax.jacobian",
        "jax.hessian", "jax.named_call", "jax.experimental.checkify.checkify",
        "equinox.filter_jit", "equinox.filter_pmap", "equinox.filter_checkpoint",
        "equinox.filter_make_jaxpr", "equinox.filter_shard_map", "equinox.filter_vmap",
        "equinox.internal.filter_vmap", "equinox.filter_grad", "equinox.filter_value_and_grad",
        "equinox.filter_jacfwd", "equinox.filter_jacrev", "equinox.filter_hessian",
    }
)
# Where a transform that calls the function itself takes its arguments: qualname ->
# (first argument position, how the function is applied): "args" passes them as they are,
# "tuple" takes a tuple of primals (jvp/vjp style).
SELF_CALLING_ARGS = {
    "jax.eval_shape": (1, "args"), "equinox.filter_eval_shape": (1, "args"),
    "jax.vjp": (1, "args"), "equinox.filter_vjp": (1, "args"),
    "jax.jvp": (1, "tuple"), "jax.linearize": (1, "args"), "equinox.filter_jvp": (1, "tuple"),
}
# Tree maps: the function is called on the leaves of the other arguments.
TREE_MAPS = frozenset(
    {"jax.tree_util.tree_map", "jax.tree.map", "jax.tree_map", "equinox.filter",
     "jax.tree_util.tree_map_with_path", "jax.tree.map_with_path", "optax.tree_utils.tree_map_params"}
)
# Staging transforms: inside them every jnp/lax call yields a tracer (omnistaging).
STAGING = frozenset(q for q, k in TRANSFORM_KIND.items() if k in ("jit", "fjit"))

# Arguments of lax's implicit-differentiation helpers that run in tangent/transpose passes.
TANGENT_SOLVE_ARGS = {
    "jax.lax.custom_root": ("jvp", 3, "tangent_solve"),
    "jax.lax.custom_linear_solve": ("transpose", 3, "transpose_solve"),
}

# Transforms that differentiate the functions they are given implicitly (through the optimality
# condition, not through the iterations): reverse-mode AD does not run through those functions.
IMPLICIT_DIFF = frozenset({"jax.lax.custom_root", "jax.lax.custom_linear_solve"})
# Rematerialisation: a checkpointed function stores no residuals for reverse mode (EQX205).
CHECKPOINTS = frozenset({"jax.checkpoint", "equinox.filter_checkpoint"})

# Routines expensive to trace and compile (EQX113): linear algebra, FFTs, solvers, loops, convolutions.
HEAVY_PREFIXES = (
    "jax.numpy.linalg.", "jax.scipy.linalg.", "jax.lax.linalg.", "jax.numpy.fft.",
    "jax.scipy.sparse.linalg.", "jax.scipy.optimize.", "jax.scipy.signal.", "jax.scipy.integrate.",
    "lineax.", "optimistix.", "diffrax.",
)
HEAVY_CALLS = frozenset(
    {
        "jax.lax.scan", "jax.lax.while_loop", "jax.lax.fori_loop", "jax.lax.map",
        "jax.lax.associative_scan", "jax.lax.conv_general_dilated", "jax.lax.conv",
        "jax.lax.conv_with_general_padding", "jax.lax.dot_general", "jax.lax.custom_root",
        "jax.lax.custom_linear_solve", "jax.lax.reduce_window", "jax.lax.sort",
        "jax.numpy.einsum", "jax.numpy.matmul", "jax.numpy.dot", "jax.numpy.tensordot",
        "jax.numpy.convolve", "jax.numpy.correlate", "jax.numpy.sort", "jax.numpy.argsort",
        "equinox.internal.while_loop", "equinox.internal.scan", "jax.random.permutation",
        "jax.numpy.kron", "jax.numpy.polyval",
    }
)

# Collectives over a named mapped axis (`jax.lax.psum(x, "i")`): code that needs `pmap`'s axis_name.
COLLECTIVES = frozenset(
    {
        "psum", "pmean", "pmax", "pmin", "all_gather", "ppermute", "pshuffle", "axis_index",
        "psum_scatter", "all_to_all", "pswapaxes", "pbroadcast", "pdot", "axis_size",
    }
)

# `jax.lax` (and `jax.numpy`) helpers that compute plain Python values from static arguments
# (shapes, dimension specs, padding): never arrays, so never tracers, unlike the rest of the
# namespace.
STATIC_RESULTS = frozenset(
    {
        "jax.lax.conv_dimension_numbers", "jax.lax.conv_general_permutations",
        "jax.lax.ConvDimensionNumbers", "jax.lax.ConvGeneralDilatedDimensionNumbers",
        "jax.lax.padtype_to_pads", "jax.lax.broadcast_shapes", "jax.lax.conv_shape_tuple",
        "jax.lax.conv_general_shape_tuple", "jax.lax.conv_transpose_shape_tuple",
        "jax.lax.GatherDimensionNumbers", "jax.lax.ScatterDimensionNumbers",
        "jax.lax.GatherScatterMode", "jax.lax.RaggedDotDimensionNumbers", "jax.lax.Precision",
        "jax.lax.DotAlgorithm", "jax.lax.DotAlgorithmPreset", "jax.lax.RoundingMethod",
        "jax.lax.FftType", "jax.lax.RandomAlgorithm", "jax.lax.dtype", "jax.lax.axis_size",
        "jax.numpy.broadcast_shapes",
    }
)

# Reverse-mode differentiation entry points (EQX205, EQX208).
REVERSE_AD = frozenset(
    {
        "jax.grad", "jax.value_and_grad", "jax.vjp", "jax.jacrev", "jax.hessian",
        "equinox.filter_grad", "equinox.filter_value_and_grad", "equinox.filter_vjp",
        "equinox.filter_jacrev", "equinox.filter_hessian",
    }
)

# Functions run on the host with concrete values: their bodies are not traced.
HOST_CALLBACKS = frozenset(
    {
        "jax.pure_callback", "jax.debug.callback", "jax.experimental.io_callback",
        "jax.experimental.host_callback.call", "jax.experimental.host_callback.id_tap",
        "jax.experimental.host_callback.id_print", "equinox.filter_pure_callback",
        "jax.lax.stop_gradient",
    }
)

# Custom-derivative decorators (EQX201, EQX203 ...).
CUSTOM_JVP = frozenset({"jax.custom_jvp", "equinox.filter_custom_jvp"})
CUSTOM_VJP = frozenset({"jax.custom_vjp", "equinox.filter_custom_vjp"})
# Attribute names that register a rule on a custom_jvp/custom_vjp function: kind of rule.
CUSTOM_RULE_METHODS = {
    "defjvp": "jvp",
    "def_jvp": "jvp",
    "defjvps": "jvp",
    "defvjp": "vjp",  # defvjp(fwd, bwd): the first argument is the forward (primal) pass
    "def_fwd": "vjp_fwd",
    "def_bwd": "vjp",
}

# Primitive classes (EQX3xx).
PRIMITIVE_CLASSES = frozenset({"jax.core.Primitive"})

# Registration APIs: qualname -> (kind(s) registered, index of the primitive argument).
AD = "jax.interpreters.ad"
BATCHING = "jax.interpreters.batching"
MLIR = "jax.interpreters.mlir"
REGISTRATION_CALLS = {
    f"{AD}.defjvp": ("jvp",),
    f"{AD}.defjvp2": ("jvp",),
    f"{AD}.defjvp_zero": ("jvp",),
    f"{AD}.deflinear": ("jvp", "transpose"),
    f"{AD}.deflinear2": ("jvp", "transpose"),
    f"{AD}.defbilinear": ("jvp", "transpose"),
    f"{BATCHING}.defvectorized": ("batching",),
    f"{BATCHING}.defbroadcasting": ("batching",),
    f"{BATCHING}.defreducer": ("batching",),
    f"{MLIR}.register_lowering": ("lowering",),
    "jax.interpreters.xla.register_translation": ("lowering",),
}
REGISTRATION_TABLES = {
    f"{AD}.primitive_jvps": "jvp",
    f"{AD}.primitive_transposes": "transpose",
    f"{AD}.reducing_transposes": "transpose",
    f"{AD}.fancy_transposes": "transpose",
    f"{BATCHING}.primitive_batchers": "batching",
    f"{BATCHING}.fancy_primitive_batchers": "batching",
    f"{BATCHING}.axis_primitive_batchers": "batching",
    f"{BATCHING}.spmd_axis_primitive_batchers": "batching",
}
# p.def_abstract_eval(...) style methods: attribute -> kind.
REGISTRATION_METHODS = {
    "def_abstract_eval": "abstract_eval",
    "def_effectful_abstract_eval": "abstract_eval",
    "def_impl": "impl",
}
# Rule-function kinds per registration (which argument positions are rule functions).
RULE_FUNCTION_ARGS = {
    f"{AD}.defjvp": ("jvp", slice(1, None)),
    f"{AD}.defjvp2": ("jvp", slice(1, None)),
    f"{AD}.deflinear": ("transpose", slice(1, 2)),
    f"{AD}.deflinear2": ("transpose", slice(1, 2)),
    f"{AD}.defbilinear": ("transpose", slice(1, 3)),
    f"{MLIR}.lower_fun": ("lowering", slice(0, 1)),
}
EQXI_RULE_DECORATORS = {
    "equinox.internal.filter_primitive_jvp": "jvp",
    "equinox.internal.filter_primitive_transpose": "transpose",
    "equinox.internal.filter_primitive_batching": "batching",
}

# Solvers whose failures must throw inside tangent rules (EQX203).
SOLVERS = frozenset(
    {
        "lineax.linear_solve",
        "optimistix.root_find",
        "optimistix.minimise",
        "optimistix.least_squares",
        "optimistix.fixed_point",
        "diffrax.diffeqsolve",
    }
)

# jax.random: samplers consume a key; split/fold_in derive new ones.
RANDOM = "jax.random"
KEY_MAKERS = frozenset({f"{RANDOM}.PRNGKey", f"{RANDOM}.key", f"{RANDOM}.wrap_key_data"})
KEY_DERIVERS = frozenset({f"{RANDOM}.split", f"{RANDOM}.fold_in", f"{RANDOM}.clone"})
KEY_NON_CONSUMING = frozenset(
    {
        f"{RANDOM}.key_data", f"{RANDOM}.key_impl", f"{RANDOM}.clone", "print", "len",
        "isinstance", "type", "id", "repr", "str", "jax.debug.print", "jax.block_until_ready",
        "jax.device_put", "jax.numpy.shape", "equinox.is_array", "jax.typeof",
        "jax.dtypes.issubdtype", "jax.numpy.issubdtype",
    }
)

EQX_NN_PREFIX = "equinox.nn."
# Equinox layers holding Python values as (non-static) fields: functions that `jax.vmap` and
# `jax.jit` cannot take as leaves (`eqx.filter_*` transforms leave them alone).
EQX_NN_PYTHON_FIELDS = {
    "equinox.nn.MLP": ("activation", "final_activation"),
    "equinox.nn.Lambda": ("fn",),
}
MODULE_BASES = frozenset({"equinox.Module"})

# Primitive names of JAX itself (EQX306; data in primitive_names.py).
from .primitive_names import FORMER_PRIMITIVE_NAMES as FORMER_PRIMITIVE_NAMES  # noqa: E402
from .primitive_names import JAX_PRIMITIVE_NAMES as JAX_PRIMITIVE_NAMES  # noqa: E402
from .primitive_names import JAX_VERSION as JAX_PRIMITIVE_NAMES_VERSION  # noqa: E402

# Types whose instances are never tracers: `isinstance(x, T)` (each of a tuple) proves `x` static
# in the true branch. Python scalars and containers, numpy's scalar types and arrays, `numbers`.
PYTHON_TYPES = frozenset(
    {
        "int", "float", "bool", "str", "complex", "tuple", "list", "dict", "bytes", "type",
        "slice", "range", "NoneType", "set", "frozenset",
        "numpy.ndarray", "numpy.generic", "numpy.number", "numpy.integer", "numpy.signedinteger",
        "numpy.unsignedinteger", "numpy.floating", "numpy.inexact", "numpy.complexfloating",
        "numpy.bool_", "numpy.bool", "numpy.int8", "numpy.int16", "numpy.int32", "numpy.int64",
        "numpy.uint8", "numpy.uint16", "numpy.uint32", "numpy.uint64", "numpy.float16",
        "numpy.float32", "numpy.float64", "numpy.complex64", "numpy.complex128", "numpy.dtype",
        "numbers.Number", "numbers.Integral", "numbers.Real", "numbers.Rational",
        "numbers.Complex",
    }
)
