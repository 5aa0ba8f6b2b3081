import os

import requests

BASE_URL = os.environ.get("ACME_URL", "https://new-endpoint.example.com/v1")
INTERNAL = "https://new-endpoint.example.com/v1/chat/completions"
STATUS_PAGE = "https://status.acme-chat.fly.dev.example.com/"  # a different host: never rewritten


def ask(prompt: str) -> str:
    r = requests.post(f"{BASE_URL}/chat/completions", json={"messages": [{"role": "user", "content": prompt}]}, headers={"Authorization": f"Bearer {os.environ['RUNPOD_API_KEY']}"})
    return r.json()["choices"][0]["message"]["content"]
