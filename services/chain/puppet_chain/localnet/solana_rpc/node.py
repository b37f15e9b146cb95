"""LocalSolana: the JSON-RPC node over HTTP, and the helpers tests and `up` call directly."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from puppet_runtime.local_http import LocalHttpApp, Request, Response
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import CreateAccountParams, create_account
from solders.token.associated import get_associated_token_address
from solders.token.state import TokenAccount
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    initialize_mint2,
    mint_to_checked,
)
from spl.token.models import InitializeMint2Params, MintToCheckedParams

from puppet_chain.localnet.solana_rpc.accounts import AccountMethods
from puppet_chain.localnet.solana_rpc.bank import Bank
from puppet_chain.localnet.solana_rpc.encoding import MINT_LEN, TOKEN_ACCOUNT_LEN, RpcError
from puppet_chain.localnet.solana_rpc.methods import ChainMethods


class LocalSolana(LocalHttpApp):
    """A single-bank Solana node on 127.0.0.1 for tests and the embedded (`up`) mode.

    Every transaction really executes on LiteSVM (System, SPL Token, Token-2022 and ATA programs
    are loaded). Each processed transaction advances the slot, the block height and the blockhash;
    a blockhash stays valid for `blockhash_valid_blocks` blocks. Commitment levels are ignored:
    a processed transaction is reported `finalized`. Address lookup tables are not resolved.
    """

    def __init__(self, *, blockhash_valid_blocks: int = 150, stall_s: float = 30.0) -> None:
        self._bank = Bank(blockhash_valid_blocks=blockhash_valid_blocks)
        self._mint_authorities: dict[Pubkey, Keypair] = {}
        super().__init__(name="local-solana", stall_s=stall_s)
        self._methods: dict[str, Callable[[list[Any]], Any]] = {
            **ChainMethods(self._bank).table(),
            **AccountMethods(self._bank).table(),
        }

    # ------------------------------------------------------------------ test and dev helpers

    def airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """Fund `pubkey` with a real transfer from the faucet (recorded like any transaction)."""
        return self._bank.airdrop(pubkey, lamports)

    def create_mint(self, authority: Keypair, decimals: int) -> Pubkey:
        """Create and initialise an SPL Token mint whose mint authority is `authority`."""
        mint = Keypair()
        with self._bank.lock:
            rent = self._bank.svm.minimum_balance_for_rent_exemption(MINT_LEN)
        ixs = [
            create_account(
                CreateAccountParams(
                    from_pubkey=self._bank.faucet.pubkey(),
                    to_pubkey=mint.pubkey(),
                    lamports=rent,
                    space=MINT_LEN,
                    owner=TOKEN_PROGRAM_ID,
                )
            ),
            initialize_mint2(
                InitializeMint2Params(
                    decimals=decimals,
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint.pubkey(),
                    mint_authority=authority.pubkey(),
                    freeze_authority=None,
                )
            ),
        ]
        self._bank.run_internal(ixs, [self._bank.faucet, mint])
        self._mint_authorities[mint.pubkey()] = authority
        return mint.pubkey()

    def mint_to(self, mint: Pubkey, owner: Pubkey, amount: int) -> Pubkey:
        """Mint `amount` base units to `owner`'s associated token account (created when
        missing); returns that account. The mint must come from `create_mint`."""
        authority = self._mint_authorities.get(mint)
        if authority is None:
            raise ValueError(f"{mint} was not created by this LocalSolana")
        ata = get_associated_token_address(owner, mint)
        ixs = [
            create_idempotent_associated_token_account(self._bank.faucet.pubkey(), owner, mint),
            mint_to_checked(
                MintToCheckedParams(
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint,
                    dest=ata,
                    mint_authority=authority.pubkey(),
                    amount=amount,
                    decimals=self._bank.mint_decimals(mint),
                )
            ),
        ]
        self._bank.run_internal(ixs, [self._bank.faucet, authority])
        return ata

    def create_token_account(self, mint: Pubkey, owner: Pubkey) -> Pubkey:
        """Create `owner`'s associated token account for any SPL Token mint (idempotent)."""
        ix = create_idempotent_associated_token_account(self._bank.faucet.pubkey(), owner, mint)
        self._bank.run_internal([ix], [self._bank.faucet])
        return get_associated_token_address(owner, mint)

    def mint_decimals(self, mint: Pubkey) -> int:
        """The decimals of an SPL Token mint; raises RpcError when `mint` is not one."""
        with self._bank.lock:
            return self._bank.mint_decimals(mint)

    def balance(self, pubkey: Pubkey) -> int:
        """Lamports held by `pubkey` (0 when the account does not exist)."""
        with self._bank.lock:
            return self._bank.svm.get_balance(pubkey) or 0

    def token_balance(self, token_account: Pubkey) -> int:
        """Base units held by an SPL token account (0 when it does not exist)."""
        with self._bank.lock:
            account = self._bank.svm.get_account(token_account)
        if account is None or len(account.data) < TOKEN_ACCOUNT_LEN:
            return 0
        return TokenAccount.from_bytes(bytes(account.data[:TOKEN_ACCOUNT_LEN])).amount

    @property
    def slot(self) -> int:
        """The current slot (one slot per processed transaction)."""
        return self._bank.slot

    @property
    def block_height(self) -> int:
        """The current block height (one block per processed transaction)."""
        return self._bank.height

    def latest_blockhash(self) -> tuple[Hash, int]:
        """The latest blockhash and its last valid block height."""
        return self._bank.latest_blockhash()

    def send(self, tx: VersionedTransaction, *, skip_preflight: bool = False) -> Signature:
        """Process a signed transaction in-process, exactly as `sendTransaction` does."""
        return self._bank.submit(tx, preflight=not skip_preflight)

    # ------------------------------------------------------------------ HTTP plumbing

    def _call(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return {
                "jsonrpc": "2.0",
                "error": {"code": -32600, "message": "Invalid request"},
                "id": None,
            }
        request_id = request.get("id")
        method = self._methods.get(request["method"])
        try:
            if method is None:
                raise RpcError(-32601, "Method not found")
            params = request.get("params") or []
            if not isinstance(params, list):
                raise RpcError(-32602, "Invalid params: expected an array")
            return {"jsonrpc": "2.0", "result": method(params), "id": request_id}
        except RpcError as exc:
            return {"jsonrpc": "2.0", "error": exc.to_json(), "id": request_id}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return {
                "jsonrpc": "2.0",
                "error": {"code": -32602, "message": f"Invalid params: {exc}"},
                "id": request_id,
            }

    def _serve(self, request: Request) -> Response | None:
        if request.method == "GET":
            if request.path.rstrip("/") == "/health":
                return Response(200, b"ok", "text/plain")
            return Response(404, b"not found", "text/plain")
        return Response(200, self._handle(request.body))

    def _handle(self, body: bytes) -> bytes:
        try:
            request = json.loads(body)
        except ValueError:
            response: Any = {
                "jsonrpc": "2.0",
                "error": {"code": -32700, "message": "Parse error"},
                "id": None,
            }
        else:
            if isinstance(request, list):
                response = [self._call(item) for item in request]
            else:
                response = self._call(request)
        return json.dumps(response, separators=(",", ":")).encode()
