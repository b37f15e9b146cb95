"""Secret parsing in its three forms, refusals that never quote the secret, and the keystore."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from puppet_chain.wallets import Keystore, key_file, parse_secret
from puppet_runtime import InvalidArgument
from solders.keypair import Keypair
from solders.pubkey import Pubkey

KEY = Keypair()


@pytest.mark.parametrize(
    "secret",
    [
        str(KEY),
        json.dumps(list(bytes(KEY))),
        bytes(KEY).hex(),
        bytes(KEY)[:32].hex(),
        json.dumps(list(bytes(KEY)[:32])),
        str(Pubkey.from_bytes(bytes(KEY)[:32])),
        f"  {KEY}\n",
    ],
)
def test_every_form_gives_the_same_keypair(secret: str) -> None:
    assert parse_secret(secret).pubkey() == KEY.pubkey()


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "abc",
        "[1,2,3]",
        "[" + ",".join(["300"] * 64) + "]",
        "0" * 128,
        "zz" * 64,
        str(KEY)[:-3],
        bytes(KEY).hex()[:-2],
        '{"a":1}',
        "[" + "1," * 63 + "true]",
    ],
)
def test_bad_secrets_are_refused_without_quoting_them(secret: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_secret(secret)
    err = caught.value
    assert err.reason == "SECRET_INVALID"
    assert err.violations[0].field == "secret"
    assert caught.value.__cause__ is None
    if secret.strip():
        assert secret.strip() not in str(err) + repr(err) + err.violations[0].description


def test_keystore_round_trip_and_binding(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keystore.key"
    store = Keystore(key_file(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = store.seal(KEY)
    assert bytes(KEY) not in sealed
    assert bytes(KEY)[:32] not in sealed
    assert Keystore(key_file(path)).open(sealed, str(KEY.pubkey())) == KEY
    with pytest.raises(ValueError, match="does not open"):
        store.open(sealed, str(Keypair().pubkey()))
    with pytest.raises(ValueError, match="does not open"):
        Keystore(bytes(32)).open(sealed, str(KEY.pubkey()))
