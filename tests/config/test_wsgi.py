"""The WSGI entry point gunicorn loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wsgi_module_keeps_what_it_loaded_out_of_garbage_collection():
    """Django and the apps, loaded once per process, are frozen out of the cyclic
    collector's scans (``gc.freeze``); the application is the usage fast path around
    Django's."""
    code = (
        "import gc; import config.wsgi as w; "
        "print(gc.get_freeze_count() > 10000, type(w.application).__name__)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "UsageFastPath"], out.stderr
