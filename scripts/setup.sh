#!/usr/bin/env bash
# Install callwise into ./.venv from the project's own files.
#   bash scripts/setup.sh          # runtime: system packages + Python packages
#   bash scripts/setup.sh --test   # also what the test suite needs (pytest, chromium, llama.cpp)
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[[ "${1:-}" == "--test" ]] && with_tests=1
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

# System packages: espeak-ng + sox make and speak sample calls, libportaudio2 is needed by
# livekit-agents' console mode, chromium renders the nightly report in the tests.
apt_pkgs=(espeak-ng sox libportaudio2)
# issue 25: OCR of a shared screen (Tesseract 5 and the packs of the served languages, about 24 MB)
apt_pkgs+=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-spa tesseract-ocr-fra tesseract-ocr-deu tesseract-ocr-jpn
           tesseract-ocr-chi-sim)
(( with_tests )) && apt_pkgs+=(chromium)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if (( ${#missing[@]} )); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip wheel setuptools

wheels=.callwise/wheels
mkdir -p "$wheels"
llama_pid=""
if (( with_tests )) && ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  # llama-cpp-python only ships an sdist: compile it (about 5 min on 2 cores) while the rest installs.
  # Not -march=native: on Intel Xeons that report AMX (amx_tile, amx_int8) the native build dies with SIGILL at
  # the first decode inside these VMs, which advertise AMX without enabling its register state. AVX2/FMA/F16C
  # run on every x86-64 machine this project uses (AMD EPYC, Intel Xeon).
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF" \
    "${pip[@]}" wheel --no-deps --no-cache-dir "llama-cpp-python==0.3.36" -w "$wheels" > "$wheels/llama-build.log" 2>&1 &
  llama_pid=$!
fi

# torch==2.13.0 (pinned in pyproject) resolves to the CPU build these machines provide.
"${pip[@]}" install -e .
# ragas and instructor: see requirements-nodeps.txt for why they go in without their pins.
"${pip[@]}" install --no-deps -r requirements-nodeps.txt

if (( with_tests )); then
  if [[ -n "$llama_pid" ]] && ! wait "$llama_pid"; then
    tail -n 30 "$wheels/llama-build.log" >&2
    echo "llama-cpp-python failed to build" >&2
    exit 1
  fi
  "${pip[@]}" install -e ".[dev]" --find-links "$wheels"
fi
echo "callwise installed in .venv"
