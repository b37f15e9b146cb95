"""Service descriptors from the generated puppet-apis, and the descriptor set for the transcoder."""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor
from google.rpc import error_details_pb2

__all__ = ["service_descriptor", "write_descriptor_set"]


def service_descriptor(service: str) -> ServiceDescriptor:
    """`puppet.<service>.v1.<Service>Service`, loaded from the generated code.

    Raises:
        ImportError: puppet-apis has no such service package.
        KeyError: the file does not define the service.
    """
    module = importlib.import_module(f"puppet.{service}.v1.{service}_service_pb2")
    file: FileDescriptor = module.DESCRIPTOR
    return file.services_by_name[f"{service.capitalize()}Service"]


def _closure(file: FileDescriptor, seen: dict[str, FileDescriptor]) -> None:
    if file.name in seen:
        return
    for dependency in file.dependencies:
        _closure(dependency, seen)
    seen[file.name] = file


def write_descriptor_set(path: Path, services: tuple[str, ...] = ("agent",)) -> Path:
    """Write a FileDescriptorSet (imports included, dependencies first) for Envoy's transcoder.

    Built from the generated modules, so it always matches the code the services run, and needs
    neither protoc nor buf at deploy time. Written atomically; rewritten only when it changed.
    """
    seen: dict[str, FileDescriptor] = {}
    # convert_grpc_status prints the rich status's details (ErrorInfo, BadRequest, ...) as JSON:
    # without their types in the set the transcoder answers errors with an empty body.
    _closure(error_details_pb2.DESCRIPTOR, seen)
    for service in services:
        _closure(service_descriptor(service).file, seen)
    files = []
    for file in seen.values():
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        files.append(proto)
    data = descriptor_pb2.FileDescriptorSet(file=files).SerializeToString()
    if path.exists() and path.read_bytes() == data:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)
    return path
