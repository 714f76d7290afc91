"""manage.py create_api_key / revoke_api_key."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from billing.models import ApiKey

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def create(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def whoami(raw: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client.get("/api/v1/whoami").status_code


def test_create_prints_the_key_once_and_stores_only_its_hash():
    out, err = create("--name", "ci pipeline", "--scopes", "events,read")
    raw = out.strip()
    assert out == raw + "\n"  # stdout is the key alone: KEY=$(manage.py create_api_key …)
    key = ApiKey.objects.get()
    assert raw.startswith(f"bf_{key.prefix}_")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert (key.name, key.scopes, key.revoked_at) == ("ci pipeline", ["events", "read"], None)
    assert err == (
        f"Created API key 'ci pipeline' (prefix {key.prefix}, scopes events,read). It is shown "
        f"once; store it now. Revoke it with `manage.py revoke_api_key {key.prefix}`.\n"
    )
    assert raw not in err
    assert whoami(raw) == 200


def test_create_accepts_spaces_and_repeats_in_scopes():
    create("--name", "all", "--scopes", " manage, read ,events,read")
    assert ApiKey.objects.get().scopes == ["events", "manage", "read"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--name", "x", "--scopes", "read,admin"],
            "Unknown scope(s) admin; scopes are events, read, manage.",
        ),
        (
            ["--name", "x", "--scopes", ","],
            "A key needs at least one scope among events, read, manage.",
        ),
        (["--name", "  ", "--scopes", "read"], "A key needs a name."),
        (["--name", "n" * 201, "--scopes", "read"], "A key's name has at most 200 characters."),
        (["--scopes", "read"], "Error: the following arguments are required: --name"),
        (["--name", "x"], "Error: the following arguments are required: --scopes"),
    ],
)
def test_create_refuses_bad_input_and_writes_nothing(args, message):
    with pytest.raises(CommandError) as error:
        create(*args)
    assert str(error.value) == message
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (
            ["--name", "x", "--scopes", "read,admin"],
            1,
            "CommandError: Unknown scope(s) admin; scopes are events, read, manage.\n",
        ),
        (["--scopes", "read"], 2, "error: the following arguments are required: --name\n"),
    ],
)
def test_create_exits_non_zero_from_the_command_line(args, code, stderr):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == code
    assert result.stdout == ""
    assert result.stderr.endswith(stderr)


def test_revoke_by_prefix_fails_the_key_at_once():
    raw = create("--name", "old", "--scopes", "read")[0].strip()
    key = ApiKey.objects.get()
    assert whoami(raw) == 200
    out = io.StringIO()
    call_command("revoke_api_key", key.prefix, stdout=out)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert out.getvalue() == (
        f"Revoked API key 'old' ({key.prefix}) at {key.revoked_at.isoformat()}.\n"
    )
    assert whoami(raw) == 401


def test_revoke_accepts_the_key_itself_and_is_idempotent():
    raw = create("--name", "old", "--scopes", "read")[0].strip()
    call_command("revoke_api_key", raw, stdout=io.StringIO())
    key = ApiKey.objects.get()
    first = key.revoked_at
    assert first is not None
    out = io.StringIO()
    call_command("revoke_api_key", key.prefix, stdout=out)
    key.refresh_from_db()
    assert key.revoked_at == first
    assert out.getvalue() == (
        f"API key 'old' ({key.prefix}) was already revoked at {first.isoformat()}.\n"
    )


@pytest.mark.parametrize("prefix", ["000000000000", "bf_", "  "])
def test_revoke_unknown_prefix_is_an_error(prefix):
    create("--name", "keep", "--scopes", "read")
    with pytest.raises(CommandError) as error:
        call_command("revoke_api_key", prefix, stdout=io.StringIO())
    assert str(error.value) == f"No API key with prefix {prefix!r}."
    assert ApiKey.objects.get().revoked_at is None
