"""``python3 -m vllm.entrypoints.openai.api_server`` -> the vLLM stand-in (tests/serve/standins/vllm_server.py)."""
import os
import runpy
import sys

if __name__ == "__main__":
    sys.argv[0] = "vllm.entrypoints.openai.api_server"
    runpy.run_path(os.path.join(os.path.dirname(os.path.realpath(__file__)), *[".."] * 4, "vllm_server.py"), run_name="__main__")
