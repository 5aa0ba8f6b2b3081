"""Text generation through TGI's native API, with requests."""
import os
import sys

import requests

TGI_URL = "https://new-endpoint.example.com"


def main() -> int:
    r = requests.post(f"{TGI_URL}/generate", json={"inputs": "Say hello", "parameters": {"max_new_tokens": 16}},
                      timeout=20, headers={"Authorization": f"Bearer {os.environ['RUNPOD_API_KEY']}"})
    r.raise_for_status()
    print(r.json()["generated_text"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
