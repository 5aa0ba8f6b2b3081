"""Stand-in inference servers for the serve harness (see tests/serve/harness.py)."""
