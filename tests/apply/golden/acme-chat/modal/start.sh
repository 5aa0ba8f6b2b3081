#!/bin/sh
set -e
# initialise the GPU driver on Fly
# flymigrate: removed Fly GPU driver shim: nvidia-smi
exec python -m vllm.entrypoints.openai.api_server --model "$MODEL" --host "0.0.0.0" --port "$PORT"
