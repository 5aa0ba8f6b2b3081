"""Calls the chat endpoint the way our product backend does (streamed)."""
import json
import os
import sys
import urllib.request

BASE_URL = "https://new-endpoint.example.com"


def main() -> int:
    body = json.dumps({"model": "chat", "stream": True,
                       "messages": [{"role": "user", "content": "Say hello"}]}).encode()
    req = urllib.request.Request(f"{BASE_URL}/v1/chat/completions", data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {os.environ['VLLM_API_KEY']}"})
    words = []
    with urllib.request.urlopen(req, timeout=20) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                words.append(json.loads(line[6:])["choices"][0]["delta"].get("content", ""))
    print("".join(words).strip())
    return 0 if words else 1


if __name__ == "__main__":
    sys.exit(main())
