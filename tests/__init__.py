"""The test suite: one folder per area, helpers in support/."""
