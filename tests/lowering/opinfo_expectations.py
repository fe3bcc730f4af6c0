"""Expected outcomes of the OpInfo suite (tests/lowering/test_opinfo.py), kept as data.

Every PyTorch OpInfo (`torch.testing._internal.common_methods_invocations.op_db`) that supports
float32 on CPU is one test, id `name` or `name.variant`. Its first few sample inputs are exported,
converted (float32, iOS18), saved, checked by coremltools' MIL loader, reloaded from disk, run by the
reference runtime and compared with eager PyTorch at the float32 tolerances of tests/tolerances.py.
See tests/lowering/_opinfo.py for the details (0-d inputs, empty samples, how outcomes are decided).

`EXPECTED` maps an op that does not pass to `(kind, reason)`:

    "export"       torch.export cannot capture any sample (data-dependent output, Python scalar
                   result, ...). Not our failure: such ops are left out of the coverage denominator.
    "unsupported"  the graph has a node no lowering accepts (UnsupportedOpsError), or the converter
                   refuses the graph on purpose (a ConversionError with no underlying exception, e.g.
                   "the model mutates a user input"). The reason says whether MIL could express it
                   at all (e.g. "MIL has no complex dtype") or a lowering is simply missing.
    "mismatch"     converts, but the numbers (or dtype/shape) differ from eager; say why.
    "crash"        any other error: converter bug, coremltools' loader rejects the package, the
                   reference runtime fails.

A listed op must fail exactly that way: an op that now passes, or fails with another kind, FAILS the
test (strict xfail), so the table cannot go stale. Every reason must be a real explanation: the
suite fails while any reason starts with "TODO".

Regenerating after lowerings change (keeps existing reasons where the kind is unchanged, writes
"TODO: explain" for new failures, drops ops that pass now):

    python scripts/collect_opinfo_expectations.py          # runs the suite with pytest -n 2
    # or: TORCH_COREML_COLLECT_EXPECT=1 python -m pytest tests/lowering/test_opinfo.py -n 2

then replace every "TODO: explain" with the cause (group by cause; the observed error is in the
comment above each new entry) and regenerate the coverage page: python scripts/gen_op_coverage.py.

`COMPARE` is hand-written: ops whose outputs cannot be compared element by element, and why.
    "shape_only"        random or uninitialized outputs: only dtype and shape are compared.
    "indices_if_unique" indices of equal values are implementation-defined (sort of ties, mode,
                        ...): values are always compared, integer (index) outputs exactly only
                        when the sample's inputs have no repeated values, else by dtype and shape.
"""

_RANDOM = "random output: only dtype and shape can be compared"
_UNINITIALIZED = "uninitialized output: only dtype and shape can be compared"
_TIES = "the index of equal values is implementation-defined: indices compared only without ties"

COMPARE = {
    "bernoulli": ("shape_only", _RANDOM),
    "cauchy": ("shape_only", _RANDOM),
    "exponential": ("shape_only", _RANDOM),
    "geometric": ("shape_only", _RANDOM),
    "log_normal": ("shape_only", _RANDOM),
    "multinomial": ("shape_only", _RANDOM),
    "normal": ("shape_only", _RANDOM),
    "normal.in_place": ("shape_only", _RANDOM),
    "normal.number_mean": ("shape_only", _RANDOM),
    "uniform": ("shape_only", _RANDOM),
    "rand_like": ("shape_only", _RANDOM),
    "randn": ("shape_only", _RANDOM),
    "randn_like": ("shape_only", _RANDOM),
    "randint": ("shape_only", _RANDOM),
    "randint_like": ("shape_only", _RANDOM),
    "nn.functional.dropout": ("shape_only", _RANDOM),
    "nn.functional.dropout2d": ("shape_only", _RANDOM),
    "nn.functional.dropout3d": ("shape_only", _RANDOM),
    "nn.functional.alpha_dropout": ("shape_only", _RANDOM),
    "nn.functional.feature_alpha_dropout.with_train": ("shape_only", _RANDOM),
    "nn.functional.fractional_max_pool2d": ("shape_only", _RANDOM + " (random pooling regions)"),
    "nn.functional.fractional_max_pool3d": ("shape_only", _RANDOM + " (random pooling regions)"),
    "nn.functional.rrelu": ("shape_only", _RANDOM + " (random slopes in training mode)"),
    "empty": ("shape_only", _UNINITIALIZED),
    "empty_like": ("shape_only", _UNINITIALIZED),
    "empty_permuted": ("shape_only", _UNINITIALIZED),
    "empty_strided": ("shape_only", _UNINITIALIZED),
    "new_empty": ("shape_only", _UNINITIALIZED),
    "new_empty_strided": ("shape_only", _UNINITIALIZED),
    "argsort": ("indices_if_unique", _TIES),
    "sort": ("indices_if_unique", _TIES),
    "topk": ("indices_if_unique", _TIES),
    "kthvalue": ("indices_if_unique", _TIES),
    "mode": ("indices_if_unique", _TIES),
    "median": ("indices_if_unique", _TIES),
    "nanmedian": ("indices_if_unique", _TIES),
    "max.reduction_with_dim": ("indices_if_unique", _TIES),
    "min.reduction_with_dim": ("indices_if_unique", _TIES),
    "cummax": ("indices_if_unique", _TIES),
    "cummin": ("indices_if_unique", _TIES),
}

# BEGIN GENERATED by scripts/collect_opinfo_expectations.py: edit reasons freely, keep the format.
EXPECTED = {
    # -- export ------------------------------------------------------------------------------------
    # observed: no sample without an empty input or output tensor (9 with an empty output)
    '_batch_norm_with_update': ('export', 'every sample returns an empty tensor (the cuDNN reserve space, zero-sized on CPU); Core ML has no zero-sized tensors, so such samples are passed over'),
    'allclose': ('export', 'the result depends on tensor values through aten.allclose.default (a Python bool/number); export cannot capture it'),
    'broadcast_shapes': ('export', 'returns a Python value, not a tensor: there is nothing to convert'),
    'corrcoef': ('export', 'the result depends on tensor values through aten.equal.default (a Python bool/number); export cannot capture it'),
    'corrcoef@int64': ('export', 'the result depends on tensor values through aten.equal.default (a Python bool/number); export cannot capture it'),
    'cov': ('export', 'the result depends on tensor values through aten.equal.default (a Python bool/number); export cannot capture it'),
    'cov@int64': ('export', 'the result depends on tensor values through aten.equal.default (a Python bool/number); export cannot capture it'),
    'equal': ('export', 'the result depends on tensor values through aten.equal.default (a Python bool/number); export cannot capture it'),
    'equal@int64': ('export', 'the result depends on tensor values through aten.equal.default (a Python bool/number); export cannot capture it'),
    'item': ('export', 'returns a Python value, not a tensor: there is nothing to convert'),
    'item@int64': ('export', 'returns a Python value, not a tensor: there is nothing to convert'),
    'jiterator_2inputs_2outputs': ('export', 'CUDA-only OpInfo (jiterator): eager fails on CPU'),
    'jiterator_2inputs_2outputs@int64': ('export', 'CUDA-only OpInfo (jiterator): eager fails on CPU'),
    'jiterator_4inputs_with_extra_args': ('export', 'CUDA-only OpInfo (jiterator): eager fails on CPU'),
    'jiterator_4inputs_with_extra_args@int64': ('export', 'CUDA-only OpInfo (jiterator): eager fails on CPU'),
    'jiterator_binary': ('export', 'CUDA-only OpInfo (jiterator): eager fails on CPU'),
    'jiterator_binary@int64': ('export', 'CUDA-only OpInfo (jiterator): eager fails on CPU'),
    'jiterator_binary_return_by_ref': ('export', 'CUDA-only OpInfo (jiterator): eager fails on CPU'),
    'jiterator_binary_return_by_ref@int64': ('export', 'CUDA-only OpInfo (jiterator): eager fails on CPU'),
    'jiterator_unary': ('export', 'CUDA-only OpInfo (jiterator): eager fails on CPU'),
    'jiterator_unary@int64': ('export', 'CUDA-only OpInfo (jiterator): eager fails on CPU'),
    'linalg.lstsq': ('export', 'output shape depends on input values (aten.linalg_lstsq.default); export cannot capture it'),
    'linalg.lstsq.grad_oriented': ('export', 'output shape depends on input values (aten.linalg_lstsq.default); export cannot capture it'),
    'nn.functional.ctc_loss': ('export', 'output shape depends on input values (aten._ctc_loss.default); export cannot capture it'),
    'nn.functional.gaussian_nll_loss': ('export', 'control flow depends on tensor values; export cannot capture it'),
    'nn.functional.one_hot@int64': ('export', 'control flow depends on tensor values; export cannot capture it'),
    # -- unsupported -------------------------------------------------------------------------------
    'angle': ('unsupported', 'no lowering for aten.angle.default (MIL has no complex dtype, so it cannot be expressed)'),
    'angle@int64': ('unsupported', 'no lowering for aten.angle.default (MIL has no complex dtype, so it cannot be expressed)'),
    'bincount@int64': ('unsupported', 'no lowering for aten.bincount.default (output length depends on the largest input value; export captures it with a data-dependent shape MIL cannot express statically)'),
    'block_diag': ('unsupported', 'the aten.full.default lowering refuses it: a zero-sized tensor'),
    'block_diag@int64': ('unsupported', 'the aten.full.default lowering refuses it: a zero-sized tensor'),
    'cdouble': ('unsupported', 'the aten._to_copy.default lowering refuses it: complex dtype torch.complex128 has no MIL equivalent'),
    'cdouble@int64': ('unsupported', 'the aten._to_copy.default lowering refuses it: complex dtype torch.complex128 has no MIL equivalent'),
    'cfloat': ('unsupported', 'the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'cfloat@int64': ('unsupported', 'the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'chalf': ('unsupported', 'the aten._to_copy.default lowering refuses it: complex dtype torch.complex32 has no MIL equivalent'),
    'chalf@int64': ('unsupported', 'the aten._to_copy.default lowering refuses it: complex dtype torch.complex32 has no MIL equivalent'),
    'complex': ('unsupported', 'no lowering for aten.complex.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.fft': ('unsupported', 'no lowering for aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.fft2': ('unsupported', 'no lowering for aten._fft_c2c.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.fft2@int64': ('unsupported', 'no lowering for aten._fft_c2c.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.fft@int64': ('unsupported', 'no lowering for aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.fftn': ('unsupported', 'no lowering for aten._fft_c2c.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.fftn@int64': ('unsupported', 'no lowering for aten._fft_c2c.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.hfft': ('unsupported', 'no lowering for aten._conj.default, aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.hfft2': ('unsupported', 'no lowering for aten._conj.default, aten._fft_c2c.default, aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.hfft2@int64': ('unsupported', 'no lowering for aten._conj.default, aten._fft_c2c.default, aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.hfft@int64': ('unsupported', 'no lowering for aten._conj.default, aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.hfftn': ('unsupported', 'no lowering for aten._conj.default, aten._fft_c2c.default, aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.hfftn@int64': ('unsupported', 'no lowering for aten._conj.default, aten._fft_c2c.default, aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.ifft': ('unsupported', 'no lowering for aten._conj.default, aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.ifft2': ('unsupported', 'no lowering for aten._fft_c2c.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.ifft2@int64': ('unsupported', 'no lowering for aten._fft_c2c.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.ifft@int64': ('unsupported', 'no lowering for aten._conj.default, aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.ifftn': ('unsupported', 'no lowering for aten._fft_c2c.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.ifftn@int64': ('unsupported', 'no lowering for aten._fft_c2c.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.ihfft': ('unsupported', 'no lowering for aten._conj.default, aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.ihfft2': ('unsupported', 'no lowering for aten._conj_physical.default, aten._fft_c2c.default, aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.ihfft2@int64': ('unsupported', 'no lowering for aten._conj_physical.default, aten._fft_c2c.default, aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.ihfft@int64': ('unsupported', 'no lowering for aten._conj.default, aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.ihfftn': ('unsupported', 'no lowering for aten._conj_physical.default, aten._fft_c2c.default, aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.ihfftn@int64': ('unsupported', 'no lowering for aten._conj_physical.default, aten._fft_c2c.default, aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.irfft': ('unsupported', 'no lowering for aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.irfft2': ('unsupported', 'no lowering for aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.irfft2@int64': ('unsupported', 'no lowering for aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.irfft@int64': ('unsupported', 'no lowering for aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.irfftn': ('unsupported', 'no lowering for aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.irfftn@int64': ('unsupported', 'no lowering for aten._fft_c2r.default (MIL has no complex dtype, so it cannot be expressed); the aten._to_copy.default lowering refuses it: complex dtype torch.complex64 has no MIL equivalent'),
    'fft.rfft': ('unsupported', 'no lowering for aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.rfft2': ('unsupported', 'no lowering for aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.rfft2@int64': ('unsupported', 'no lowering for aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.rfft@int64': ('unsupported', 'no lowering for aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.rfftn': ('unsupported', 'no lowering for aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'fft.rfftn@int64': ('unsupported', 'no lowering for aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'gcd@int64': ('unsupported', "no lowering for aten.gcd.default (needs Euclid's loop; only a MIL while_loop could express it)"),
    'hash_tensor': ('unsupported', 'no lowering for aten.hash_tensor.default (hashes the raw bytes of the tensor; MIL has no bitcast, so it cannot be expressed)'),
    'hash_tensor@int64': ('unsupported', 'no lowering for aten.hash_tensor.default (hashes the raw bytes of the tensor; MIL has no bitcast, so it cannot be expressed)'),
    'lcm@int64': ('unsupported', "no lowering for aten.lcm.default (needs Euclid's loop; only a MIL while_loop could express it)"),
    'linalg.eig': ('unsupported', 'no lowering for aten.linalg_eig.default (a general matrix has complex eigenvalues and eigenvectors; MIL has no complex dtype, so it cannot be expressed)'),
    'linalg.eigvals': ('unsupported', 'no lowering for aten.linalg_eig.default (a general matrix has complex eigenvalues and eigenvectors; MIL has no complex dtype, so it cannot be expressed)'),
    'nn.functional.avg_pool1d@int64': ('unsupported', 'the aten.avg_pool2d.default lowering refuses it: pooling of an integer tensor (MIL pools take floats only)'),
    'nn.functional.avg_pool2d@int64': ('unsupported', 'the aten.avg_pool2d.default lowering refuses it: pooling of an integer tensor (MIL pools take floats only)'),
    'nn.functional.avg_pool3d@int64': ('unsupported', 'the aten.avg_pool3d.default lowering refuses it: pooling of an integer tensor (MIL pools take floats only)'),
    'nn.functional.linear_cross_entropy.chunked': ('unsupported', 'no lowering for torch_nn._linear_cross_entropy_batch_chunked.default (a torch.nn custom op export keeps whole; MIL can express its decomposition)'),
    'nn.functional.linear_cross_entropy.chunked_none': ('unsupported', 'no lowering for torch_nn._linear_cross_entropy_batch_chunked_no_reduction.default (a torch.nn custom op export keeps whole; MIL can express its decomposition)'),
    'nn.functional.local_response_norm@int64': ('unsupported', 'the aten.avg_pool2d.default lowering refuses it: pooling of an integer tensor (MIL pools take floats only)'),
    'nn.functional.max_pool2d@int64': ('unsupported', 'the aten.max_pool2d_with_indices.default lowering refuses it: pooling of an integer tensor (MIL pools take floats only)'),
    'nn.functional.max_pool3d@int64': ('unsupported', 'the aten.max_pool3d_with_indices.default lowering refuses it: pooling of an integer tensor (MIL pools take floats only)'),
    'polar': ('unsupported', 'no lowering for aten.polar.default (MIL has no complex dtype, so it cannot be expressed)'),
    'resize_as_': ('unsupported', 'no lowering for aten.resize.default (MIL tensors have no strides or storage, so arbitrary strided views cannot be expressed)'),
    'resize_as_@int64': ('unsupported', 'no lowering for aten.resize.default (MIL tensors have no strides or storage, so arbitrary strided views cannot be expressed)'),
    'sparse.mm.reduce': ('unsupported', 'no lowering for aten._sparse_mm_reduce_impl.default (sparse tensors have no MIL equivalent)'),
    'sparse.sampled_addmm': ('unsupported', 'no lowering for aten.sparse_sampled_addmm.default (sparse tensors have no MIL equivalent)'),
    'stft': ('unsupported', 'no lowering for aten._fft_r2c.default (MIL has no complex dtype, so it cannot be expressed)'),
    'tensor_split': ('unsupported', "no lowering for aten._local_scalar_dense.default (reads a tensor value into a Python scalar (.item()) inside the graph; Core ML has no host-side scalars, so it cannot be expressed as captured); no lowering for aten.sym_storage_offset.default (queries a view's storage offset; MIL tensors have no storage, so it cannot be expressed)"),
    'tensor_split@int64': ('unsupported', "no lowering for aten._local_scalar_dense.default (reads a tensor value into a Python scalar (.item()) inside the graph; Core ML has no host-side scalars, so it cannot be expressed as captured); no lowering for aten.sym_storage_offset.default (queries a view's storage offset; MIL tensors have no storage, so it cannot be expressed)"),
    'to_sparse': ('unsupported', 'no lowering for aten._to_sparse.default (sparse tensors have no MIL equivalent)'),
    'to_sparse@int64': ('unsupported', 'no lowering for aten._to_sparse.default (sparse tensors have no MIL equivalent)'),
    'tril_indices@int64': ('unsupported', 'no lowering for aten.tril_indices.default (MIL can express it; the lowering is not written yet)'),
    'triu_indices@int64': ('unsupported', 'no lowering for aten.triu_indices.default (MIL can express it; the lowering is not written yet)'),
    'view_as_complex': ('unsupported', 'no lowering for aten.view_as_complex.default (MIL has no complex dtype, so it cannot be expressed)'),
    # -- mismatch ----------------------------------------------------------------------------------
    # observed: sample 0: output 1: Tensor-likes are not close! Mismatched elements: 5 / 25 (20.0%) Greatest absolute difference: 1.2503082752227783 at index (0, 2) (up to 1e-05 allowed) Greatest relative difference: 2.0000007152557373 at index (3, 2) (up to 0.0001 allowed)
    'linalg.eigh': ('mismatch', "the eigen vectors differ from LAPACK's by sign (relative difference exactly 2): they are unique only up to sign, and our Jacobi iteration does not reproduce LAPACK's choice; the eigenvalues and the reconstructed matrix match"),
    # observed: sample 0: output 0: Tensor-likes are not close! Mismatched elements: 6 / 9 (66.7%) Greatest absolute difference: 1.714688777923584 at index (1, 2) (up to 1e-05 allowed) Greatest relative difference: 2.000000238418579 at index (1, 2) (up to 0.0001 allowed)
    'linalg.svd': ('mismatch', "the singular vectors differ from LAPACK's by sign (relative difference exactly 2): they are unique only up to sign, and our Jacobi iteration does not reproduce LAPACK's choice; the singular values and the reconstructed matrix match"),
    # observed: sample 0: output 0: Tensor-likes are not close! Mismatched elements: 6 / 9 (66.7%) Greatest absolute difference: 1.714688777923584 at index (1, 2) (up to 1e-05 allowed) Greatest relative difference: 2.000000238418579 at index (1, 2) (up to 0.0001 allowed)
    'svd': ('mismatch', "the singular vectors differ from LAPACK's by sign (relative difference exactly 2): they are unique only up to sign, and our Jacobi iteration does not reproduce LAPACK's choice; the singular values and the reconstructed matrix match"),
    # -- crash -------------------------------------------------------------------------------------
    'take': ('crash', "torch's own decomposition of aten.take, re-run by our decompose step, guards on a data-dependent index value (GuardOnDataDependentSymNode); needs a direct take lowering (MIL gather)"),
}
# END GENERATED
