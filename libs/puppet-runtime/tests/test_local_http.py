"""LocalHttpServer: raw answers, closing without one, injected failures, a failing handler."""

import httpx
import pytest
from puppet_runtime.local_http import LocalHttpServer, Request, Response


def handle(request: Request) -> Response | None:
    if request.path == "/close":
        return None
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    return Response(200, request.body, "text/plain", {"x-method": request.method})


def test_answers_closes_fails_on_demand_and_restarts():
    server = LocalHttpServer(handle, name="probe", stall_s=5.0)
    with httpx.Client(base_url=server.start(), timeout=2.0) as client:
        answer = client.put("/echo", content=b"hi")
        assert (answer.status_code, answer.text, answer.headers["x-method"]) == (200, "hi", "PUT")
        assert answer.headers["content-type"] == "text/plain"
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/close")
        assert client.get("/boom").status_code == 500
        server.fail_next(1, "http500")
        assert client.get("/echo").status_code == 500
        server.fail_next(1, "timeout")
        with pytest.raises(httpx.ReadTimeout):
            client.get("/echo", timeout=0.2)
        assert client.get("/echo").status_code == 200
    server.stop()
    assert not server.running
    with pytest.raises(ValueError, match="unknown failure kind"):
        server.fail_next(1, "teapot")  # type: ignore[arg-type]
