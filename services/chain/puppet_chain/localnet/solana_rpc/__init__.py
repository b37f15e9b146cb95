"""A LiteSVM-backed Solana JSON-RPC node on 127.0.0.1 (LocalSolana) and its encodings."""

from puppet_runtime.local_http import FailureKind

from puppet_chain.localnet.solana_rpc.encoding import (
    FEATURE_SET,
    LAMPORTS_PER_SIGNATURE,
    SOLANA_CORE_VERSION,
    RpcError,
    b58decode,
    b58encode,
)
from puppet_chain.localnet.solana_rpc.node import LocalSolana

__all__ = [
    "FEATURE_SET",
    "LAMPORTS_PER_SIGNATURE",
    "SOLANA_CORE_VERSION",
    "FailureKind",
    "LocalSolana",
    "RpcError",
    "b58decode",
    "b58encode",
]
