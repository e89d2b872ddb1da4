"""Primitive names of JAX itself (data for EQX306).

`JAX_PRIMITIVE_NAMES`: the `.name` of every `Primitive` object defined in JAX 0.10.2 (collected by
importing every `jax._src` module and listing the `Primitive` instances they hold). A name string
not in it is either a project's own primitive or a JAX name that no longer exists.

`FORMER_PRIMITIVE_NAMES`: names JAX primitives used to have and no longer do, with what the
primitive is called now (or None when it is gone). A string test on one of these never matches
on current JAX: the code it guards silently stops running.
"""

JAX_VERSION = "0.10.2"

JAX_PRIMITIVE_NAMES = frozenset({
    'abs', 'accum_grad_in_ref', 'acos', 'acosh', 'add', 'add_any', 'add_dependency', 'addupdate',
    'after_all', 'all_gather', 'all_gather_done', 'all_gather_invariant', 'all_gather_reduced',
    'all_gather_reduced_start', 'all_gather_start', 'all_reduce_ffs',
    'all_reduce_population_count', 'all_to_all', 'all_to_all_done', 'all_to_all_start', 'and',
    'approx_top_k', 'argmax', 'argmin', 'asin', 'asinh', 'atan', 'atan2', 'atanh', 'atomic_cas',
    'atomic_rmw', 'axis_index', 'barrier', 'bessel_i0e', 'bessel_i1e', 'bitcast',
    'bitcast_convert_type', 'box_get', 'box_set', 'broadcast_in_dim', 'broadcast_to',
    'buffer_callback', 'call', 'call_exported', 'call_hi_primitive',
    'call_hi_primitive_linearized', 'cbrt', 'ceil', 'check', 'cholesky', 'cholesky_update',
    'clamp', 'closed_call', 'clz', 'complex', 'composite', 'compute_on', 'concatenate', 'cond',
    'conj', 'conv_general_dilated', 'convert_element_type', 'copy', 'core_map', 'cos', 'cosh',
    'create_linear', 'create_token', 'cudnn_fusion', 'cumlogsumexp', 'cummax', 'cummin', 'cumprod',
    'cumsum', 'custom_fusion', 'custom_jvp_call', 'custom_jvp_call_jaxpr', 'custom_lin',
    'custom_linear_solve', 'custom_partitioning', 'custom_vjp_call', 'custom_vmap_call',
    'dce_sink', 'debug_barrier_p', 'debug_callback', 'debug_print', 'delay', 'device_put',
    'digamma', 'dim_as_value', 'dimension_size', 'div', 'dma_start', 'dma_wait', 'dot_general',
    'dot_product_attention_bwd', 'dot_product_attention_bwd_wrapper',
    'dot_product_attention_fp8_bwd', 'dot_product_attention_fp8_bwd_wrapper',
    'dot_product_attention_fp8_fwd', 'dot_product_attention_fp8_fwd_wrapper',
    'dot_product_attention_fwd', 'dot_product_attention_fwd_wrapper', 'dynamic_slice',
    'dynamic_update_slice', 'eig', 'eigh', 'einshape_lo', 'elementwise_inline_asm_p',
    'emit_pipeline', 'empty', 'empty2', 'empty_ref', 'eq', 'eq_to', 'erf', 'erf_inv', 'erfc',
    'eval_jaxpr', 'exp', 'exp2', 'expm1', 'ffi_call', 'fft', 'floor', 'free_ref', 'freeze',
    'from_edtype', 'fusible', 'gather', 'ge', 'geqp3', 'geqrf', 'get', 'get_barrier_semaphore',
    'get_global', 'gt', 'hessenberg', 'householder_product', 'igamma', 'igamma_grad_a', 'igammac',
    'imag', 'inspect_sharding', 'integer_pow', 'io_callback', 'iota', 'iota_2x32_shape',
    'is_finite', 'jaxpr_call', 'jit', 'layout_constraint', 'le', 'le_to', 'lgamma', 'linear_call',
    'load', 'log', 'log1p', 'log_extend', 'log_read', 'logistic', 'lt', 'lt_to', 'lu',
    'lu_pivots_to_permutation', 'masked_cummax', 'masked_cummin', 'masked_cumsum', 'masked_load',
    'masked_sort', 'masked_swap', 'matmul_acc_lhs', 'matmul_pop', 'matmul_push_rhs', 'max',
    'max_contiguous', 'min', 'mpmd_map', 'mul', 'mulhi', 'multiple_of', 'name', 'ne', 'neg',
    'new_box', 'new_log', 'new_ref', 'nextafter', 'not', 'num_programs', 'optimization_barrier',
    'or', 'ormqr', 'pack', 'pack_dtype', 'pack_elementwise', 'pad', 'pallas_call', 'parallel_loop',
    'pbroadcast', 'pbroadcast_done', 'pbroadcast_start', 'philox2x32', 'philox4x32', 'pin',
    'pipeline_body', 'platform_index', 'pmax', 'pmin', 'polygamma', 'population_count', 'pow',
    'ppermute', 'ppermute_done', 'ppermute_start', 'precv', 'preduced', 'prng_join',
    'prng_random_bits', 'prng_seed', 'prng_split', 'program_id', 'psend', 'psum', 'psum_done',
    'psum_invariant', 'psum_invariant_start', 'psum_start', 'pure_callback', 'pvary', 'qr',
    'ragged_all_to_all', 'ragged_dot_general', 'random_bits', 'random_clone', 'random_fold_in',
    'random_gamma', 'random_seed', 'random_split', 'random_unwrap', 'random_wrap', 'real',
    'reciprocal', 'reduce', 'reduce_and', 'reduce_max', 'reduce_min', 'reduce_or',
    'reduce_precision', 'reduce_prod', 'reduce_scatter', 'reduce_scatter_done',
    'reduce_scatter_start', 'reduce_sum', 'reduce_window', 'reduce_window_max',
    'reduce_window_min', 'reduce_window_sum', 'reduce_xor', 'reduced_vary_cast_p',
    'regularized_incomplete_beta', 'rem', 'remat2', 'remat_opt', 'remove_memory_space', 'reshape',
    'reshard', 'rev', 'rng_bit_generator', 'rng_uniform', 'roll', 'round', 'rsqrt', 'run_scoped',
    'run_state', 'sc_fetch_and_add', 'scaled_dot', 'scaled_matmul', 'scaled_matmul_wrapper',
    'scan', 'scatter', 'scatter-add', 'scatter-max', 'scatter-min', 'scatter-mul', 'scatter-sub',
    'schur', 'select_and_gather_add', 'select_and_scatter', 'select_and_scatter_add', 'select_n',
    'semaphore_read', 'semaphore_signal', 'semaphore_wait', 'shape_assertion', 'shard_alike',
    'shard_map', 'sharding_constraint', 'shift_left', 'shift_right_arithmetic',
    'shift_right_logical', 'sign', 'sin', 'sinh', 'slice', 'sort', 'split', 'sqrt', 'square',
    'squeeze', 'stack', 'stage', 'stochastic_round', 'stop_gradient', 'sub', 'svd', 'swap',
    'symmetric_product', 'tan', 'tanh', 'threefry2x32', 'threefry4x32', 'tie', 'tile', 'to_edtype',
    'top_k', 'tpu_custom_call', 'trace_value', 'transpose', 'triangular_solve', 'tridiagonal',
    'tridiagonal_solve', 'unique', 'unpack', 'unpack_dtype', 'unpack_elementwise', 'unpin',
    'unreachable', 'unreduced_psum', 'unreduced_psum_start', 'unreduced_reduce_scatter',
    'unreduced_reduce_scatter_start', 'unstack', 'vary_unreduced_cast_p', 'while',
    'with_memory_space_constraint', 'xla_metadata_value', 'xor', 'zeros_like', 'zeta',
})

FORMER_PRIMITIVE_NAMES = {
    "pjit": "jit",  # renamed in JAX 0.7
    "xla_call": "jit",  # the old `jax.jit` primitive, removed when jit became pjit
    "xla_pmap": None,  # `jax.pmap` no longer binds a primitive of its own
    "custom_vjp_call_jaxpr": "custom_vjp_call",
    "remat_call": "remat2",  # the old `jax.checkpoint` primitive
}
