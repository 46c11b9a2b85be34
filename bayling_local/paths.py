"""Where bayling-local keeps its files: settings, models, history.

Platform directories come from platformdirs; ``BAYLING_LOCAL_CONFIG_DIR`` and
``BAYLING_LOCAL_DATA_DIR`` override them (tests and portable installs use these).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "bayling-local"


def config_dir() -> Path:
    """Directory of ``settings.toml``."""
    override = os.environ.get("BAYLING_LOCAL_CONFIG_DIR")
    return (
        Path(override)
        if override
        else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    )


def data_dir() -> Path:
    """Directory of the model store and the history database."""
    override = os.environ.get("BAYLING_LOCAL_DATA_DIR")
    return (
        Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    )


def settings_path() -> Path:
    return config_dir() / "settings.toml"


def models_dir() -> Path:
    return data_dir() / "models"


def history_path() -> Path:
    return data_dir() / "history.sqlite3"
