"""The v1 contracts follow the house proto rules that buf lint cannot check (STYLE.md B5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from puppet.agent.v1 import agent_service_pb2
from puppet.chain.v1 import chain_service_pb2
from puppet.llm.v1 import llm_service_pb2
from puppet.social.v1 import social_service_pb2

SERVICES = [
    agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"],
    llm_service_pb2.DESCRIPTOR.services_by_name["LlmService"],
    social_service_pb2.DESCRIPTOR.services_by_name["SocialService"],
    chain_service_pb2.DESCRIPTOR.services_by_name["ChainService"],
]
METHODS = [method for service in SERVICES for method in service.methods]
PROTOS = Path(__file__).resolve().parents[2] / "protos"
SECRET_NAME = re.compile(r"secret|credential|private_key|api_key|access_token|password")
NO_SIDE_EFFECTS = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS


def _method_id(method: MethodDescriptor) -> str:
    return method.full_name


def _is_read(method: MethodDescriptor) -> bool:
    return method.GetOptions().idempotency_level == NO_SIDE_EFFECTS


@pytest.mark.parametrize("method", METHODS, ids=_method_id)
def test_side_effecting_calls_take_a_request_id_and_reads_do_not(method: MethodDescriptor) -> None:
    has_request_id = "request_id" in method.input_type.fields_by_name
    assert has_request_id is not _is_read(method)


@pytest.mark.parametrize("method", METHODS, ids=_method_id)
def test_request_and_response_are_named_after_the_rpc(method: MethodDescriptor) -> None:
    assert method.input_type.name == f"{method.name}Request"
    assert method.output_type.name == f"{method.name}Response"


@pytest.mark.parametrize(
    "method", [m for m in METHODS if m.name.startswith("List")], ids=_method_id
)
def test_every_list_paginates(method: MethodDescriptor) -> None:
    request, response = method.input_type.fields_by_name, method.output_type.fields_by_name
    assert _is_read(method)
    assert request["page_size"].type == FieldDescriptor.TYPE_INT32
    assert request["page_token"].type == FieldDescriptor.TYPE_STRING
    assert response["next_page_token"].type == FieldDescriptor.TYPE_STRING
    assert method.output_type.fields_by_number[1].is_repeated


def _field_names(message: Descriptor, seen: set[str]) -> set[str]:
    if message.full_name in seen or message.full_name.startswith("google.protobuf."):
        return set()
    seen.add(message.full_name)
    names = set()
    for field in message.fields:
        if field.type != FieldDescriptor.TYPE_BOOL:  # flags such as has_credentials are fine
            names.add(field.name)
        if field.message_type is not None:
            names |= _field_names(field.message_type, seen)
    return names


@pytest.mark.parametrize("method", METHODS, ids=_method_id)
def test_no_response_can_carry_a_secret(method: MethodDescriptor) -> None:
    leaky = {name for name in _field_names(method.output_type, set()) if SECRET_NAME.search(name)}
    assert not leaky


def _comment_above(proto_file: str, declaration: str) -> str:
    """The // comment lines right above a declaration in a .proto file under protos/."""
    lines = (PROTOS / proto_file).read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith(declaration))
    comment: list[str] = []
    for line in reversed(lines[:index]):
        if not line.strip().startswith("//"):
            break
        comment.insert(0, line.strip().removeprefix("//").strip())
    return " ".join(comment)


def test_secrets_are_documented_as_write_only_request_fields() -> None:
    assert chain_service_pb2.ImportWalletRequest.DESCRIPTOR.name == "ImportWalletRequest"
    wallet_secret = _comment_above("puppet/chain/v1/chain_service.proto", "string secret = 3;")
    assert "WRITE-ONLY" in wallet_secret
    for form in ("base58", "JSON-array", "hex"):
        assert form in wallet_secret.replace("JSON array", "JSON-array")
    x_credentials = _comment_above("puppet/social/v1/social.proto", "message XCredentials {")
    assert "Write-only" in x_credentials
