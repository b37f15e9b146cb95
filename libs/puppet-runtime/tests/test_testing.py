"""The test kit's HTTP fake shell: real HTTP on 127.0.0.1, every method, JSON answers."""

import httpx
import pytest
from puppet_runtime.testing import HttpAnswer, http_fake


def test_http_fake_serves_every_method_and_stops():
    seen: list[tuple[str, str, str, bytes]] = []

    def respond(method: str, path: str, headers: dict[str, str], raw: bytes) -> HttpAnswer:
        seen.append((method, path, headers.get("x-probe", ""), raw))
        return HttpAnswer(201, {"method": method}, {"x-fake": "yes"})

    with http_fake(respond, name="probe") as url:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url) as client:
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                answer = client.request(method, "/a?b=1", content=b"{}", headers={"x-probe": "1"})
                assert (answer.status_code, answer.json()) == (201, {"method": method})
                assert answer.headers["x-fake"] == "yes"
    assert [s[0] for s in seen] == ["GET", "POST", "PUT", "PATCH", "DELETE"]
    assert all(s[1:] == ("/a?b=1", "1", b"{}") for s in seen)
    with httpx.Client() as client, pytest.raises(httpx.ConnectError):
        client.get(url)


def test_http_fake_empty_body():
    with http_fake(lambda *_: HttpAnswer(204)) as url, httpx.Client() as client:
        answer = client.delete(url + "/x")
        assert (answer.status_code, answer.content) == (204, b"")
