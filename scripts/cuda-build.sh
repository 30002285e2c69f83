#!/usr/bin/env bash
# Builds `semcom` with candle's CUDA backend on a machine with no GPU and no CUDA install, for a
# GPU machine with an NVIDIA driver for CUDA 13.0 (driver 580) or later and CUDA 13 libraries
# (libcudart.so.13, libcublas.so.13, libcurand.so.10; a PyTorch cu130 install has them).
#
#   scripts/cuda-build.sh [WORK_DIR]        (default ../cuda-build)
#
# The CUDA 13.0 compiler and libraries come from PyPI wheels. No wheel ships the driver
# (libcuda.so.1), so a stub with cudarc's driver symbols is built for linking only: the GPU
# machine's driver provides the real one. The kernels are PTX for sm_90 (Hopper; set
# CUDA_COMPUTE_CAP for another GPU), compiled by the driver at first use. Result:
# WORK_DIR/semcom (stripped). On the GPU machine:
#   LD_LIBRARY_PATH=<dir of libcuda.so.1>:<dir of libcublas.so.13> ./semcom train image ...
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mkdir -p "${1:-$repo/../cuda-build}" && cd "${1:-$repo/../cuda-build}" && pwd)
cd "$work"
if [ ! -x cuda/bin/nvcc ]; then
  mkdir -p wheels
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    -d wheels nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.0.0.19 \
    nvidia-curand==10.4.0.35 nvidia-cuda-cccl==13.0.85
  python3 -m pip install -q --no-deps --no-index --target py wheels/*.whl
  p=$work/py/nvidia/cu13
  mkdir -p cuda/lib64/stubs stub
  ln -sfn "$p/bin" cuda/bin
  ln -sfn "$p/include" cuda/include
  ln -sfn "$p/nvvm" cuda/nvvm
  for f in "$p"/lib/*.so* "$p"/lib/*.a; do ln -sfn "$f" cuda/lib64/; done
  for l in cublas cublasLt curand nvrtc cudart; do
    t=$(cd cuda/lib64 && ls "lib$l.so."* | grep -v alt | head -1)
    ln -sfn "$t" "cuda/lib64/lib$l.so"
  done
  # The driver stub: every cu* function of cudarc's bindings, returning CUDA_ERROR_STUB_LIBRARY.
  sys=$(ls -d ~/.cargo/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs | head -1)
  grep -oE '^pub unsafe fn cu[A-Za-z0-9_]+\(' "$sys" | sed -E 's/pub unsafe fn (.*)\(/\1/' | sort -u \
    | awk 'BEGIN { print "static int stub(void) { return 34; }" } { print "int " $1 "(void) { return stub(); }" }' \
    > stub/libcuda_stub.c
  gcc -O1 -fPIC -shared -Wl,-soname,libcuda.so.1 -o stub/libcuda.so stub/libcuda_stub.c
  ln -sfn "$work/stub/libcuda.so" cuda/lib64/stubs/libcuda.so
  ln -sfn libcuda.so cuda/lib64/stubs/libcuda.so.1
fi
export CUDA_ROOT=$work/cuda CUDA_PATH=$work/cuda CUDA_HOME=$work/cuda
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export PATH=$work/cuda/bin:$PATH
export LIBRARY_PATH=$work/cuda/lib64:$work/cuda/lib64/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}
cd "$repo"
CARGO_TARGET_DIR=$work/target cargo build --release -p semcom-cli --features semcom-cli/cuda
cp "$work/target/release/semcom" "$work/semcom"
strip "$work/semcom"
# It starts here with the stub (no GPU): a check that every library resolves.
LD_LIBRARY_PATH=$work/cuda/lib64:$work/cuda/lib64/stubs "$work/semcom" --version
echo "built $work/semcom"
