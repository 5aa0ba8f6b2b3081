"""flymigrate: move GPU inference apps off Fly.io onto Modal, RunPod Serverless or Google Cloud Run."""

__version__ = "0.1.0"
