"""The public surface other services code against: adding is fine, renaming is not."""

import puppet_runtime


def test_all_is_pinned():
    assert sorted(puppet_runtime.__all__) == [
        "Aborted",
        "AlreadyExists",
        "Context",
        "DeadlineExceeded",
        "FailedPrecondition",
        "FieldChecks",
        "FieldViolation",
        "InvalidArgument",
        "NotFound",
        "PermissionDenied",
        "ResourceExhausted",
        "ServiceError",
        "ServiceSettings",
        "ServiceSpec",
        "StartedServer",
        "Unauthenticated",
        "Unavailable",
        "client_interceptors",
        "configure_logging",
        "configure_tracing",
        "current_request_id",
        "invalid_field",
        "open_channel",
        "run",
        "serve",
        "server_interceptors",
        "service_config",
        "start_metrics_server",
        "started_server",
    ]


def test_every_exported_name_resolves():
    for name in puppet_runtime.__all__:
        assert getattr(puppet_runtime, name) is not None, name


def test_testing_kit_names():
    from puppet_runtime import testing

    assert sorted(testing.__all__) == [
        "FuzzOutcome",
        "HttpAnswer",
        "HttpResponder",
        "build_message",
        "call_sync",
        "free_port",
        "fuzz_scalars",
        "http_fake",
        "load_sibling",
        "message_values",
        "mongo_wire_server",
        "running",
        "serve_in_thread",
        "serve_servicer",
        "status_of",
        "wait_serving",
    ]


def test_admin_names():
    from puppet_runtime import admin

    assert sorted(admin.__all__) == ["ADMIN_TOKEN_REQUIRED", "AdminGuard", "is_loopback"]
