"""Uploads an audio clip for transcription."""
import os
import json
import sys
import urllib.request

TRANSCRIBE_URL = "https://new-endpoint.example.com/transcribe"


def main() -> int:
    req = urllib.request.Request(TRANSCRIBE_URL, data=b"RIFF....WAVEfmt " + bytes(64), method="POST",
                                 headers={"Content-Type": "audio/wav", "Authorization": f"Bearer {os.environ['RUNPOD_API_KEY']}"})
    with urllib.request.urlopen(req, timeout=20) as r:
        out = json.loads(r.read())
    print(out["text"])
    return 0 if out.get("text") else 1


if __name__ == "__main__":
    sys.exit(main())
