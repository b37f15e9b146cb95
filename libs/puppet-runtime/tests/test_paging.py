"""Page tokens: opaque, resumable, refused for another query or when tampered with."""

import pytest
from puppet_runtime import paging


def test_token_round_trips_its_cursor() -> None:
    token = paging.encode("agents/a1|kinds=1", [1700000000, "m9"])
    assert paging.decode("agents/a1|kinds=1", token) == [1700000000, "m9"]
    assert "=" not in token


def test_token_of_another_query_is_refused() -> None:
    token = paging.encode("agents/a1", "m9")
    with pytest.raises(ValueError, match="different query"):
        paging.decode("agents/a2", token)


@pytest.mark.parametrize("token", ["x", "!!!", paging.encode("q", "c")[:-3] + "zzz", "e30"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValueError, match="token"):
        paging.decode("q", token)
