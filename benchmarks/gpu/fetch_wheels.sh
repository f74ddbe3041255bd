#!/usr/bin/env bash
# Download, here, the wheels the GPU machine lacks (it has PyTorch, NumPy, SciPy, rich, matplotlib,
# tensorboard, but no Meta-World, MuJoCo, gymnasium or tyro, and no package registry), for its
# Python 3.12, into .whl/ (git-ignored). Then benchmarks/gpu/run.sh on it.
set -euo pipefail
cd "$(dirname "$0")/../.."
# .whl/ is in .gitignore: it travels only when a device call names it in carry
plat=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64; do plat+=(--platform "$p"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" -d .whl \
    metaworld==3.1.1 mujoco==3.3.0 gymnasium==1.4.0 farama-notifications tyro==1.0.17 \
    docstring-parser typeguard glfw pyopengl shtab
du -sh .whl && ls .whl
