"""Stand-in ``vllm`` package for the serve harness (not the real vLLM): only its server entry points."""
__version__ = "standin"
