#!/usr/bin/env bash
# Triton portability (issue 16.2): the tests that exercise Triton, and the AOT compile of every shipped
# kernel for sm_90, with an older Triton release than the venv's (GPU machines here ship 3.6).
#
#     bash benchmarks/triton_compat.sh [VERSION ...]      # default 3.6.0; e.g. 3.4.0 3.6.0
#
# Each release is installed once, without dependencies, into its own folder under
# ${HYPRGEN_TRITON_CACHE:-~/.cache/hyprgen-triton}/VERSION (pip --target: a few seconds from a local
# wheel; about 150 MB to download otherwise) and shadows the venv's triton through PYTHONPATH; torch,
# numpy and the rest stay the venv's. That is faster than a second venv (which must install torch too).
# What runs (about a minute on 2 cores; the AOT test takes ~35 s more with a cold ~/.triton/cache):
# the interpreter tests of the merge (with TRITON_INTERPRET=1 too) and of two neurons' generated
# kernels, a whole HYPR step with backend="triton", compile_keys (Triton's JIT runtime internals), the
# printer's sm_90 compile (libdevice), and `hyprgen build --aot sm_90` (its test).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
CACHE=${HYPRGEN_TRITON_CACHE:-$HOME/.cache/hyprgen-triton}
TESTS=(tests/ops/test_merge.py tests/ops/test_compile_keys.py
       "tests/ops/test_stages.py::test_s_stage_fused_recurrent[cpu-brf]"
       "tests/ops/test_stages.py::test_s_stage_fused_recurrent[cpu-adex]"
       "tests/ops/test_stages.py::test_p_stage[cpu-brf]" "tests/ops/test_stages.py::test_p_stage[cpu-adex]"
       "tests/ops/test_stages.py::test_s_stage_per_step_fallback[cpu-brf]"
       "tests/ops/test_stages.py::test_s_stage_feedforward[cpu-brf]"
       "tests/runtime/test_hypr_triton.py::test_training_step_equals_torch_backend[brf-same_step]"
       tests/runtime/test_hypr_triton.py::test_new_lengths_never_recompile
       tests/compiler/test_triton_printer.py::test_libdevice_stand_in
       tests/compiler/test_triton_printer.py::test_kernels_compile_for_sm90
       tests/ops/test_verify_aot.py::test_aot_report_every_shipped_kernel_for_sm90)

for version in "${@:-3.6.0}"; do
    dir="$CACHE/$version"
    if [ ! -f "$dir/.installed" ]; then
        rm -rf "$dir"
        "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir" "triton==$version"
        touch "$dir/.installed"
    fi
    export_path="$dir:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    found=$(PYTHONPATH="$export_path" "$PYTHON" -c "import triton; print(triton.__version__)")
    if [ "$found" != "$version" ]; then
        echo "triton_compat: wanted triton $version, imported $found" >&2
        exit 1
    fi
    echo "triton_compat: triton $found ($dir)"
    PYTHONPATH="$export_path" OMP_NUM_THREADS=1 "$PYTHON" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
done
