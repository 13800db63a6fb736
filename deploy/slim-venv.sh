#!/bin/sh
# Strip the serving venv of what `wanwu serve` (ONNX Runtime or OpenVINO on CPU, ONNX model) never loads, then
# prove it still serves (deploy/warmup.py) and keep byte code only for the modules that run.
# Usage (inside the image build, stage `slim`): WANWU_HOME=... sh slim-venv.sh VENV [WARMUP_PY]
# deploy/README.md explains each item.
set -eu
VENV=${1:-/opt/venv}
WARMUP=${2:-}
SP=$(echo "$VENV"/lib/python3*/site-packages)
OV="$SP/openvino"
mb() { du -sk "$@" | awk '{s += $1} END {printf "%.1f", s / 1024}'; }
before=$(mb "$VENV")

# 1. OpenVINO: keep the CPU plugin, the ONNX and IR frontends and the core. Other devices' plugins
#    (GPU, NPU) and meta-plugins (AUTO, HETERO, BATCH), the GPU kernel-tuning cache, frontends for
#    TensorFlow/TFLite/PaddlePaddle/PyTorch/JAX/GGUF, the C API, C++ headers and the model
#    conversion tools (ovc, benchmark_app) are never loaded.
rm -f "$OV"/libs/libopenvino_intel_gpu_plugin.so "$OV"/libs/libopenvino_intel_npu_plugin.so \
      "$OV"/libs/libopenvino_auto_plugin.so "$OV"/libs/libopenvino_auto_batch_plugin.so \
      "$OV"/libs/libopenvino_hetero_plugin.so "$OV"/libs/cache.json \
      "$OV"/libs/libopenvino_tensorflow_frontend.so* "$OV"/libs/libopenvino_tensorflow_lite_frontend.so* \
      "$OV"/libs/libopenvino_paddle_frontend.so* "$OV"/libs/libopenvino_pytorch_frontend.so* \
      "$OV"/libs/libopenvino_jax_frontend.so* "$OV"/libs/libopenvino_gguf_frontend.so* \
      "$OV"/libs/libopenvino_c.so* "$OV"/libs/libtbbmalloc_proxy.so* "$OV"/libs/*.pc
rm -rf "$OV"/frontend/tensorflow "$OV"/frontend/paddle "$OV"/frontend/pytorch "$OV"/frontend/jax \
       "$OV"/tools "$OV"/include
rm -f "$VENV"/bin/ovc "$VENV"/bin/benchmark_app "$VENV"/bin/opt_in_out

# 1b. ONNX Runtime: InferenceSession needs only capi/. The quantization, transformer-optimisation
#     and model tools (Python, ~9 MB) run at build or calibration time, never while serving.
#     libonnxruntime.so.1.* (34.8 MB) is the C/C++ API library for programs that link ONNX Runtime
#     themselves: the Python binding (onnxruntime_pybind11_state) has the whole runtime built in and
#     does not load it (its NEEDED entries are only libc/libstdc++/libgcc; the warm-up below serves
#     with ONNX Runtime after the removal).
ORT="$SP/onnxruntime"
rm -rf "$ORT"/tools "$ORT"/quantization "$ORT"/transformers "$ORT"/datasets "$ORT"/backend
rm -f "$ORT"/capi/libonnxruntime.so.*
rm -f "$VENV"/bin/onnxruntime_test

# 2. Pillow: wanwu accepts JPEG, PNG, WebP, GIF, BMP and TIFF only. AVIF (libavif), font rendering
#    (_imagingft: FreeType, HarfBuzz, Brotli, libpng), colour management (_imagingcms: LittleCMS),
#    Tk, ImageMath and ImageMorph are optional extensions Pillow imports only on request.
rm -f "$SP"/PIL/_avif.*.so "$SP"/PIL/_imagingft.*.so "$SP"/PIL/_imagingcms.*.so "$SP"/PIL/_imagingtk.*.so \
      "$SP"/PIL/_imagingmath.*.so "$SP"/PIL/_imagingmorph.*.so \
      "$SP"/pillow.libs/libavif-*.so* "$SP"/pillow.libs/libfreetype-*.so* "$SP"/pillow.libs/libharfbuzz-*.so* \
      "$SP"/pillow.libs/libbrotli*.so* "$SP"/pillow.libs/libpng16-*.so* "$SP"/pillow.libs/liblcms2-*.so*

# 3. Syntax highlighting (Pygments, 4.6 MB) is used only by rich.syntax/rich.traceback; the CLI and
#    the service use rich's console and tables, which never import it.
rm -rf "$SP"/pygments "$SP"/pygments-*.dist-info "$VENV"/bin/pygmentize

# 3b. Never imported by serving (the warm-up below proves it: none of them gets byte code): protobuf and
#     flatbuffers (ONNX Runtime needs them only for its model tools, removed in 1b) and markdown-it (rich's
#     Markdown renderer). ~2 MB, measured by deploy/site_budget.py.
rm -rf "$SP"/google/protobuf "$SP"/google/_upb "$SP"/protobuf-*.dist-info "$SP"/flatbuffers "$SP"/flatbuffers-*.dist-info \
       "$SP"/markdown_it "$SP"/markdown_it_py-*.dist-info "$SP"/mdurl "$SP"/mdurl-*.dist-info "$VENV"/bin/markdown-it
rmdir "$SP"/google 2>/dev/null || true

# 4. Packaging tools: nothing is installed at run time.
rm -rf "$SP"/pip "$SP"/pip-* "$SP"/setuptools "$SP"/setuptools-* "$SP"/pkg_resources \
       "$SP"/_distutils_hack "$SP"/distutils-precedence.pth "$SP"/wheel "$SP"/wheel-*
rm -f "$VENV"/bin/pip "$VENV"/bin/pip3* "$VENV"/bin/wheel "$VENV"/bin/activate* "$VENV"/bin/Activate.ps1

# 5. Test suites (and NumPy's compiled test modules), type stubs, C headers, static libraries,
#    f2py and NumPy's build configuration.
find "$SP" -depth -type d -name tests -exec rm -rf {} +
find "$SP" -type f \( -name '*.pyi' -o -name '*.pxd' -o -name '*.h' -o -name '*.a' \) -delete
rm -rf "$SP"/numpy/_core/include "$SP"/numpy/_core/lib "$SP"/numpy/f2py "$SP"/numpy/_pyinstaller \
       "$SP"/numpy/_core/_simd.*.so "$SP"/numpy/_core/_multiarray_tests.*.so "$SP"/numpy/_core/_umath_tests.*.so \
       "$SP"/numpy/_core/_rational_tests.*.so "$SP"/numpy/_core/_struct_ufunc_tests.*.so \
       "$SP"/numpy/_core/_operand_flag_tests.*.so "$VENV"/bin/f2py "$VENV"/bin/numpy-config

# 6. Symbol tables: NumPy's and Pillow's core extension modules ship unstripped (2.7 MB of symbols
#    in _imaging alone). Only these two: the libraries auditwheel vendored (numpy.libs,
#    pillow.libs) were rewritten by patchelf and `strip` breaks them ("ELF load command
#    address/offset not page-aligned"). The warm-up below loads both.
if command -v strip >/dev/null 2>&1; then
  for f in "$SP"/numpy/_core/_multiarray_umath.*.so "$SP"/PIL/_imaging.*.so; do
    [ -f "$f" ] && strip --strip-unneeded "$f"
  done
fi

# 7. Byte code: drop every .pyc, run the service once (deploy/warmup.py), and keep only the .pyc
#    Python wrote for the modules it imported (start-up needs them: without byte code the image
#    takes ~3 s longer to become ready). They are rewritten as unchecked-hash .pyc, valid whatever
#    timestamps the files get later.
find "$VENV" -depth -type d -name __pycache__ -exec rm -rf {} +
if [ -n "$WARMUP" ]; then
  "$VENV"/bin/python "$WARMUP"
  "$VENV"/bin/python - "$SP" <<'PY'
import pathlib, py_compile, sys
n = 0
for pyc in pathlib.Path(sys.argv[1]).rglob("__pycache__/*.pyc"):
    src = pyc.parent.parent / (pyc.name.split(".")[0] + ".py")
    if src.is_file():
        py_compile.compile(str(src), cfile=str(pyc), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        n += 1
print(f"slim-venv: kept byte code for {n} modules that serving imports")
PY
  find "$VENV" -path '*/__pycache__/*' ! -name '*.pyc' -delete   # e.g. stray .tmp files
fi

echo "slim-venv: $VENV ${before} MiB -> $(mb "$VENV") MiB"
du -sk "$SP"/* | sort -n | tail -n 10 | awk '{printf "  %6.1f MiB  %s\n", $1 / 1024, $2}'
