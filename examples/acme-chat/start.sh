#!/bin/sh
set -e
# initialise the GPU driver on Fly
nvidia-smi
exec python -m vllm.entrypoints.openai.api_server --model "$MODEL" --host "[::]" --port "$PORT"
