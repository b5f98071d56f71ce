"""The receiver-side helper: the Standard Webhooks test vector, and what verify refuses."""

from __future__ import annotations

import pytest

from app.client import verify_webhook
from app.webhooks.signing import WebhookVerificationError, new_secret, sign, verify

# The Standard Webhooks specification's published test vector.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = '{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str = SIGNATURE, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_the_specs_test_vector_is_reproduced_exactly() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY.encode()) == SIGNATURE


def test_verify_accepts_the_vector_with_any_header_case_and_among_several_signatures() -> None:
    verify(SECRET, headers(), BODY, now=TIMESTAMP + 10)
    upper = {k.upper(): v for k, v in headers(f"v1,bm9wZQ== {SIGNATURE}").items()}
    verify(SECRET, upper, BODY.encode(), now=TIMESTAMP)


@pytest.mark.parametrize(
    ("secret", "hdrs", "body", "now"),
    [
        (SECRET, headers(), '{"test": 2432232315}', TIMESTAMP),  # body changed
        (new_secret(), headers(), BODY, TIMESTAMP),  # another endpoint's secret
        (SECRET, headers(), BODY, TIMESTAMP + 301),  # too old
        (SECRET, headers(), BODY, TIMESTAMP - 301),  # from the future
        (SECRET, headers("v2," + SIGNATURE[3:]), BODY, TIMESTAMP),  # unknown version
        (SECRET, {"webhook-id": MSG_ID}, BODY, TIMESTAMP),  # headers missing
    ],
)
def test_verify_refuses(secret: str, hdrs: dict[str, str], body: str, now: float) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(secret, hdrs, body, now=now)


def test_new_secrets_are_whsec_base64_and_distinct() -> None:
    one, two = new_secret(), new_secret()
    assert one.startswith("whsec_")
    assert one != two
    signed = sign(one, "msg_x", 1, b"{}")
    verify(one, headers(signed, 1) | {"webhook-id": "msg_x"}, b"{}", now=1)


def test_the_clients_verify_webhook_returns_the_event_of_a_genuine_message() -> None:
    assert verify_webhook(SECRET, headers(), BODY, tolerance_s=10**10) == {"test": 2432232314}
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, headers(), BODY.replace("2", "3"), tolerance_s=10**10)
    signed_list = "[1]"
    list_headers = headers(sign(SECRET, MSG_ID, TIMESTAMP, signed_list))
    with pytest.raises(WebhookVerificationError, match="not a JSON object"):
        verify_webhook(SECRET, list_headers, signed_list, tolerance_s=10**10)
