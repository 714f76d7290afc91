"""What Billfold signs is what the Standard Webhooks reference library verifies
(``standardwebhooks``), with one secret and with two during a rotation."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from billing.webhooks.signing import (
    SECRET_PREFIX,
    secret_generate,
    secret_key,
    signature,
    signed_headers,
)
from core.errors import ValidationFailed

BODY = b'{"type":"invoice.finalized","timestamp":"2026-01-01T00:00:00Z","data":{"id":"inv_1"}}'


def test_a_new_secret_is_whsec_and_32_random_bytes():
    one, two = secret_generate(), secret_generate()
    assert one.startswith(SECRET_PREFIX) and one != two
    assert len(base64.b64decode(one[len(SECRET_PREFIX) :])) == 32
    assert secret_key(one) == base64.b64decode(one[len(SECRET_PREFIX) :])


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "whsec_",
        "sk_" + base64.b64encode(bytes(32)).decode(),  # another prefix
        "whsec_not base64!",
        "whsec_" + base64.b64encode(bytes(23)).decode(),  # shorter than 24 bytes
        None,
    ],
)
def test_a_secret_that_is_not_whsec_and_24_bytes_is_refused(secret):
    with pytest.raises(ValidationFailed) as refused:
        secret_key(secret)
    assert list(refused.value.errors) == ["secret"]


def test_the_reference_library_verifies_the_signed_headers():
    secret = secret_generate()
    now = int(time.time())
    headers = signed_headers("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now, BODY, [secret])
    assert headers["webhook-id"] == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers)["data"] == {"id": "inv_1"}


def test_the_specifications_example_signature():
    """The example of the specification's reference implementations: this secret, id,
    timestamp and body sign to this signature."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_during_a_rotation_both_secrets_sign_and_either_verifies():
    old, new = secret_generate(), secret_generate()
    now = int(time.time())
    headers = signed_headers("msg_1", now, BODY, [old, new])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_generate()).verify(BODY, headers)


def test_a_changed_body_id_or_timestamp_fails_verification():
    secret = secret_generate()
    now = int(time.time())
    headers = signed_headers("msg_1", now, BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"inv_1", b"inv_2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-timestamp": str(now - 1)})


@pytest.mark.parametrize("message_id", ["", "msg 1", "msg.1", "msg,1"])
def test_an_id_that_would_break_the_signed_text_or_the_header_is_refused(message_id):
    with pytest.raises(ValueError):
        signed_headers(message_id, 1, BODY, [secret_generate()])


def test_a_message_needs_a_secret():
    with pytest.raises(ValueError):
        signed_headers("msg_1", 1, BODY, [])


@settings(max_examples=50, deadline=None)
@given(
    body=st.binary(max_size=2048),
    message_id=st.from_regex(r"msg_[A-Za-z0-9]{1,40}", fullmatch=True),
)
def test_any_body_and_id_verify(body, message_id):
    secret = secret_generate()
    now = int(time.time())
    headers = signed_headers(message_id, now, body, [secret])
    assert Webhook(secret).verify(body, headers, json_parse=False) is None
