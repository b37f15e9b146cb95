"""Local stand-ins for Solana and Jupiter: a LiteSVM JSON-RPC node and a Jupiter-shaped API."""

from puppet_chain.localnet.solana_rpc import FailureKind, LocalSolana, RpcError

__all__ = ["FailureKind", "LocalSolana", "RpcError"]
