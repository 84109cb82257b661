"""Channel URLs at rest: sealed, opened only with the right key, rotated, and a clear error naming
FOREWARN_SECRET_KEY whenever the key is missing, malformed or not the one a value was sealed with."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from core.secretbox import KEY_FILE, SecretBox, SecretKeyError, is_sealed, label, new_key, secret_box
from core.settings import Settings
from notifiers.channels import masked, protect, seal

URL = "twilio://ACa1b2c3d4e5f60718293a4b5c6d7e8f90:tok3nS3cr3t998877@+15551234567/+8613800138000"
SECRETS = ("tok3nS3cr3t998877", "8613800138000", "ACa1b2c3d4e5f60718293a4b5c6d7e8f90", "15551234567")


def test_a_sealed_url_opens_to_itself_and_shows_only_its_masked_form() -> None:
    box = SecretBox([new_key()])
    stored = seal(URL, box)
    assert is_sealed(stored) and not is_sealed(URL)
    assert box.open(stored) == URL
    for secret in SECRETS:
        assert secret not in stored, f"{secret} is readable in the stored value"
    assert label(stored) == masked(URL) == masked(stored), "listings read the masked form without the key"
    assert label(URL) is None


def test_the_same_url_sealed_twice_gives_two_values() -> None:
    """Fernet seals with a random IV: equal channels are not visible as equal in the table."""
    box = SecretBox([new_key()])
    assert seal(URL, box) != seal(URL, box)


def test_a_plain_url_of_an_earlier_version_is_read_as_it_is() -> None:
    assert SecretBox([new_key()]).open("json://127.0.0.1:9/x") == "json://127.0.0.1:9/x"


def test_the_wrong_key_is_refused_with_a_message_naming_the_setting() -> None:
    stored = seal(URL, SecretBox([new_key()]))
    with pytest.raises(SecretKeyError, match="FOREWARN_SECRET_KEY") as refused:
        SecretBox([new_key()]).open(stored)
    assert "tok3nS3cr3t998877" not in str(refused.value) and "8613800138000" not in str(refused.value)


def test_a_tampered_value_is_refused() -> None:
    box = SecretBox([new_key()])
    stored = seal(URL, box)
    token_end = stored.index(":", len("sealed:v1:"))
    flipped = stored[: token_end - 5] + ("A" if stored[token_end - 5] != "A" else "B") + stored[token_end - 4 :]
    with pytest.raises(SecretKeyError):
        box.open(flipped)


@pytest.mark.parametrize("keys", [["not-a-key"], [new_key(), "short"], []])
def test_a_malformed_or_missing_key_is_refused_with_how_to_make_one(keys: list[str]) -> None:
    with pytest.raises(SecretKeyError, match="FOREWARN_SECRET_KEY|Fernet key"):
        SecretBox(keys)


def test_rotation_new_key_first_old_key_still_opens_and_protect_reseals_with_the_new_one() -> None:
    old, new = new_key(), new_key()
    stored = seal(URL, SecretBox([old]))
    both = SecretBox([new, old])
    assert both.open(stored) == URL, "the old key still opens during the rotation"
    resealed = protect(stored, both)
    assert SecretBox([new]).open(resealed) == URL, "after re-sealing the new key alone opens it"
    with pytest.raises(SecretKeyError):
        SecretBox([old]).open(resealed)
    assert SecretBox([new]).open(both.reseal(stored)) == URL
    assert label(both.reseal(stored)) == label(stored)


def test_protect_seals_a_plain_url() -> None:
    box = SecretBox([new_key()])
    assert box.open(protect(URL, box)) == URL and is_sealed(protect(URL, box))


def test_keys_from_the_setting_comma_separated(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    stored = seal(URL, SecretBox([old]))
    box = secret_box(Settings(secret_key=f"{new}, {old}", state_dir=str(tmp_path)))
    assert box.open(stored) == URL
    assert SecretBox([new]).open(seal(URL, box)) == URL, "the first key seals"
    assert not (tmp_path / KEY_FILE).exists(), "with the setting no key file is made"


def test_without_the_setting_a_key_file_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = Settings(secret_key="", state_dir=str(tmp_path / "state"))
    with pytest.raises(SecretKeyError, match="FOREWARN_SECRET_KEY is empty"):
        secret_box(settings, create=False)  # a reader never makes a key that would open nothing
    stored = seal(URL, secret_box(settings))
    path = tmp_path / "state" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    assert secret_box(settings, create=False).open(stored) == URL
    assert path.read_text() == first, "made once, then kept"
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE], "no draft left behind"
