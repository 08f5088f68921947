"""llama-cpp-python's OpenAI-compatible server, loading llama.cpp the way ragnb does.

    python -m ragnb.generate.serve --model FILE.gguf --host 127.0.0.1 --port 8080 --n_threads 1

The arguments are ``python -m llama_cpp.server``'s (``pip install "ragnb[server]"``). The one
difference: on CPUs that advertise AMX, llama.cpp's extra buffer types are off, as in ragnb's
own llama.cpp backend (on some VMs the AMX matmul segfaults on any prompt of 2+ tokens).
The served-model tests and ``benchmarks/bench_served.py`` start the server this way.
"""

from __future__ import annotations

import runpy

from ragnb.errors import INSTALL, require


def main() -> None:
    """Run ``llama_cpp.server`` with this process's arguments."""
    require("llama_cpp.server", "llama-cpp-python's server", INSTALL["server"])
    import llama_cpp

    from ragnb.generate.llamacpp import without_extra_buffers

    with without_extra_buffers(llama_cpp):
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
