"""OpenAI-style completion against the big model."""
import os
import sys

import requests

API_BASE = "https://new-endpoint.example.com/v1"


def main() -> int:
    r = requests.post(f"{API_BASE}/chat/completions", timeout=20,
                      json={"model": "harness-org/big-chat", "messages": [{"role": "user", "content": "hi"}]}, headers={"Authorization": f"Bearer {os.environ['RUNPOD_API_KEY']}"})
    r.raise_for_status()
    print(r.json()["choices"][0]["message"]["content"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
