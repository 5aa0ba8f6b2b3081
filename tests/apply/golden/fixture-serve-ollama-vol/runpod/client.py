"""Asks the model for a one-line answer (non-streamed)."""
import os
import json
import sys
import urllib.request

OLLAMA = "https://new-endpoint.example.com"
PUBLIC = "https://new-endpoint.example.com"


def main() -> int:
    body = json.dumps({"model": "tinyllama", "prompt": "Say hello", "stream": False}).encode()
    req = urllib.request.Request(f"{PUBLIC}/api/generate", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {os.environ['RUNPOD_API_KEY']}"})
    with urllib.request.urlopen(req, timeout=20) as r:
        out = json.loads(r.read())
    print(out["response"])
    return 0 if out.get("response") else 1


if __name__ == "__main__":
    sys.exit(main())
