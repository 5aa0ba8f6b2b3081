#!/bin/sh
# the weights cache lives on the volume; vLLM checks VLLM_API_KEY on /v1 requests
exec python3 -m vllm.entrypoints.openai.api_server \
  --model "$MODEL" \
  --download-dir /data/hf-cache \
  --served-model-name chat \
  --host 0.0.0.0 --port 8000
