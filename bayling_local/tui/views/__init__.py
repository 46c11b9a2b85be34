"""The views of the terminal UI, one per tab."""
