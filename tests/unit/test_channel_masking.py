"""What a channel looks like wherever it is shown (logs, listings, API answers, delivery rows):
apprise's privacy URL, then no query, no phone number, no key left readable."""

from __future__ import annotations

import logging

import pytest

from forewarn.sink import HttpSink
from notifiers import channels
from notifiers.channels import masked

CASES = [
    # (URL, what must not be shown, what must still be shown)
    (
        "json://user:secretpw@example.com:8080/hook?token=abc123xyz&phone=%2B8613800138000",
        ["secretpw", "abc123xyz", "8613800138000"],
        ["json://user:", "example.com:8080/hook"],
    ),
    ("jsons://example.com/path/+8613800138000", ["8613800138000"], ["example.com/path", "000"]),
    (
        "twilio://ACa1b2c3d4e5f60718293a4b5c6d7e8f90:tok3nS3cr3t998877@+15551234567/+8613800138000",
        ["tok3nS3cr3t998877", "a1b2c3d4e5f60718293a4b5c6d7e8f9", "15551234567", "8613800138000"],
        ["twilio://"],
    ),
    ("mailto://wang:pw123456@example.com", ["pw123456"], ["wang", "example.com"]),
    (
        "tgram://123456789:ABCdefGHIjklMNOpqrSTUvwxYZ/987654321",
        ["ABCdefGHIjklMNOpqrSTUvwxYZ", "123456789", "987654321"],
        ["tgram://"],
    ),
    (
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
        ["TIiajkdnlazkcOXrIdevi7FQ", "A1BRTD4JD"],
        ["slack://"],
    ),
    (
        "sns://AKIAIOSFODNN7EXAMPLE/wJalrXUtnFEMIK7MDENG/us-east-1/+8613800138000",
        ["AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMIK7MDENG", "8613800138000"],
        ["sns://", "us-east-1"],
    ),
    ("vonage://apikey:s3cret42@+15551234567/+8613800138000", ["s3cret42", "15551234567", "8613800138000"], []),
    ("smseagle://t0kenAbc@gateway.example/13800138000", ["t0kenAbc", "13800138000"], ["gateway.example"]),
    ("dingtalk://abcdef0123456789abcdef/13800138000", ["abcdef0123456789abcdef", "13800138000"], ["dingtalk://"]),
    ("form://h.example/x?:phone=13800138000", ["13800138000"], ["form://h.example/x"]),
    ("json://h.example/x?+X-Api-Key=SECRETKEY42", ["SECRETKEY42", "X-Api-Key"], ["json://h.example/x?…"]),
    ("json://127.0.0.1:9/x?apikey=SUPERSECRET", ["SUPERSECRET"], ["json://127.0.0.1:9/x"]),
    ("json://h.example/hooks/catch/123456/abcdEF1234ghij", ["abcdEF1234ghij", "123456"], ["json://h.example/hooks"]),
    ("aliyun://AKID/SECRETXYZ/Sign/Template/13800138000", ["SECRETXYZ", "13800138000"], ["aliyun://"]),
    ("https://user:pw@hooks.example/secret-path", ["pw@", "secret-path"], ["https://"]),
]


@pytest.mark.parametrize(
    ("url", "hidden", "shown"), CASES, ids=[c[0].split(":", 1)[0] + str(i) for i, c in enumerate(CASES)]
)
def test_the_masked_form_hides_keys_passwords_and_phone_numbers(url: str, hidden: list[str], shown: list[str]) -> None:
    out = masked(url)
    for secret in hidden:
        assert secret not in out, f"{secret!r} is readable in {out!r}"
    for part in shown:
        assert part in out, f"{part!r} should still tell the channel apart in {out!r}"


def test_a_test_sink_url_stays_readable() -> None:
    """Nothing secret in it: the masked form is the URL itself (the delivery rows stay useful)."""
    assert masked("json://127.0.0.1:41234/broken/ab12cd") == "json://127.0.0.1:41234/broken/ab12cd"


def test_not_a_url_shows_no_part_of_it() -> None:
    assert "s3cret" not in masked("s3cret-no-scheme")
    assert masked("unknownscheme://s3cret@host/x") == "unknownscheme://…"


def test_apprise_log_lines_of_a_send_show_no_part_of_the_url(caplog: pytest.LogCaptureFixture) -> None:
    """Apprise logs the URL it posts to (DEBUG) and targets (INFO): scrubbed while we send."""
    sink = HttpSink().start()
    try:
        url = sink.url("hooks/k3yT0kenAbcdef42/13800138000")
        with caplog.at_level(logging.DEBUG, logger="apprise"):
            result = channels.send(url, "title", "body")
    finally:
        sink.stop()
    assert result.ok
    assert [d.path for d in sink.received] == ["/hooks/k3yT0kenAbcdef42/13800138000"], "the real URL was used"
    lines = [r.getMessage() for r in caplog.records if r.name == "apprise"]
    assert any("POST URL" in line for line in lines), f"apprise logged no URL line to check: {lines}"
    for line in lines:
        assert "k3yT0kenAbcdef42" not in line and "13800138000" not in line, line


def test_a_failed_send_says_which_channel_masked() -> None:
    result = channels.send("json://127.0.0.1:9/hooks/k3yT0kenAbcdef42?+X-Key=abcSECRET", "t", "b")
    assert not result.ok and result.error
    assert "k3yT0kenAbcdef42" not in result.error and "abcSECRET" not in result.error
