"""The interactive walkthrough (``flymigrate tui``). Textual is imported only inside this package."""
