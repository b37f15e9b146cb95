"""LocalSolana through the unmodified solana-py AsyncClient: SOL, SPL, errors and receipts' data."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from puppet_chain.localnet import LocalSolana
from puppet_chain.localnet.solana_rpc import b58decode, b58encode
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solana.rpc.models import TokenAccountOpts, TxOpts
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.errors import (
    SendTransactionPreflightFailureMessage,
    UnsupportedTransactionVersionMessage,
)
from solders.signature import Signature
from solders.system_program import CreateAccountParams, TransferParams, create_account, transfer
from solders.token.associated import get_associated_token_address
from solders.transaction import Legacy, Transaction, VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
)
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_associated_token_account,
    initialize_mint2,
    mint_to_checked,
    transfer_checked,
)
from spl.token.models import InitializeMint2Params, MintToCheckedParams, TransferCheckedParams

SOL = 1_000_000_000


@pytest.fixture
def node() -> Iterator[LocalSolana]:
    with LocalSolana() as solana:
        yield solana


@pytest.fixture
async def client(node: LocalSolana) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(node.url) as rpc:
        yield rpc


async def _signed(client: AsyncClient, ixs: list[Instruction], *signers: Keypair) -> bytes:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    message = MessageV0.try_compile(signers[0].pubkey(), ixs, [], blockhash)
    return bytes(VersionedTransaction(message, list(signers)))


async def _send(client: AsyncClient, ixs: list[Instruction], *signers: Keypair) -> str:
    raw = await _signed(client, ixs, *signers)
    signature = (await client.send_raw_transaction(raw)).value
    await client.confirm_transaction(signature)
    return str(signature)


async def _funded(client: AsyncClient, lamports: int = 10 * SOL) -> Keypair:
    wallet = Keypair()
    signature = (await client.request_airdrop(wallet.pubkey(), lamports)).value
    await client.confirm_transaction(signature)
    return wallet


def _preflight_error(caught: pytest.ExceptionInfo[RPCException]) -> object:
    failure = caught.value.args[0]
    assert isinstance(failure, SendTransactionPreflightFailureMessage)
    return failure.data.err


async def test_health_version_and_is_connected(client: AsyncClient) -> None:
    assert await client.is_connected()
    assert (await client.get_version()).value.solana_core
    assert (await client.get_slot()).value > 0
    epoch = (await client.get_epoch_info()).value
    assert epoch.absolute_slot == (await client.get_slot()).value
    assert (await client.get_genesis_hash()).value
    assert (await client.get_recent_prioritization_fees()).value == []
    before = (await client.get_transaction_count()).value
    await _funded(client)
    assert (await client.get_transaction_count()).value == before + 1


async def test_airdrop_confirms_and_funds(client: AsyncClient) -> None:
    wallet = Keypair()
    signature = (await client.request_airdrop(wallet.pubkey(), 2 * SOL)).value
    status = (await client.confirm_transaction(signature)).value[0]
    assert status is not None
    assert status.err is None
    assert (await client.get_balance(wallet.pubkey())).value == 2 * SOL


async def test_sol_transfer_moves_lamports_and_charges_the_fee(client: AsyncClient) -> None:
    alice, bob = await _funded(client), Keypair()
    ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=bob.pubkey(), lamports=SOL))
    await _send(client, [ix], alice)
    assert (await client.get_balance(bob.pubkey())).value == SOL
    assert (await client.get_balance(alice.pubkey())).value == 9 * SOL - 5_000


async def test_overdraft_is_a_preflight_failure_like_a_real_node(client: AsyncClient) -> None:
    alice = await _funded(client, SOL)
    ix = transfer(
        TransferParams(from_pubkey=alice.pubkey(), to_pubkey=Keypair().pubkey(), lamports=5 * SOL)
    )
    with pytest.raises(RPCException) as caught:
        await client.send_raw_transaction(await _signed(client, [ix], alice))
    assert _preflight_error(caught) == TransactionErrorInstructionError(
        0, InstructionErrorCustom(1)
    )
    failure = caught.value.args[0]
    assert any("insufficient lamports" in line for line in failure.data.logs or [])
    assert (await client.get_balance(alice.pubkey())).value == SOL


async def test_failed_transaction_without_preflight_lands_with_its_error(
    client: AsyncClient,
) -> None:
    alice = await _funded(client, SOL)
    ix = transfer(
        TransferParams(from_pubkey=alice.pubkey(), to_pubkey=Keypair().pubkey(), lamports=5 * SOL)
    )
    raw = await _signed(client, [ix], alice)
    signature = (await client.send_raw_transaction(raw, TxOpts(skip_preflight=True))).value
    status = (await client.get_signature_statuses([signature])).value[0]
    assert status is not None
    assert status.err == TransactionErrorInstructionError(0, InstructionErrorCustom(1))
    tx = (await client.get_transaction(signature, max_supported_transaction_version=0)).value
    assert tx is not None
    assert tx.transaction.meta is not None
    assert tx.transaction.meta.err is not None
    assert (await client.get_balance(alice.pubkey())).value == SOL - 5_000


async def test_signatures_for_address_newest_first(client: AsyncClient) -> None:
    alice, bob = await _funded(client), Keypair()
    ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=bob.pubkey(), lamports=SOL))
    first = await _send(client, [ix], alice)
    second = await _send(client, [ix], alice)
    listed = (await client.get_signatures_for_address(bob.pubkey())).value
    assert [str(item.signature) for item in listed] == [second, first]
    assert listed[0].slot > listed[1].slot
    older = (
        await client.get_signatures_for_address(
            alice.pubkey(), before=Signature.from_string(second), limit=1
        )
    ).value
    assert [str(item.signature) for item in older] == [first]


async def test_replay_is_rejected_and_blockhash_advances(client: AsyncClient) -> None:
    alice, bob = await _funded(client), Keypair()
    ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=bob.pubkey(), lamports=SOL))
    raw = await _signed(client, [ix], alice)
    await client.send_raw_transaction(raw)
    with pytest.raises(RPCException) as caught:
        await client.send_raw_transaction(raw)
    assert _preflight_error(caught) == TransactionErrorFieldless.AlreadyProcessed
    # The same transfer built again gets a fresh blockhash, so it is not a replay.
    await _send(client, [ix], alice)
    assert (await client.get_balance(bob.pubkey())).value == 2 * SOL


async def _raw(node: LocalSolana, method: str, params: list[object]) -> dict[str, object]:
    async with httpx.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        reply: dict[str, object] = (await http.post(node.url, json=body)).json()
        return reply


async def test_unknown_blockhash_is_rejected(node: LocalSolana, client: AsyncClient) -> None:
    alice = await _funded(client)
    ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=alice.pubkey(), lamports=1))
    tx = VersionedTransaction(
        MessageV0.try_compile(alice.pubkey(), [ix], [], Hash.new_unique()), [alice]
    )
    with pytest.raises(RPCException) as caught:
        await client.send_transaction(tx)
    assert _preflight_error(caught) == TransactionErrorFieldless.BlockhashNotFound
    unknown = await _raw(node, "isBlockhashValid", [str(Hash.new_unique())])
    assert unknown["result"] == {
        "context": {"slot": node.slot, "apiVersion": "2.2.7"},
        "value": False,
    }
    latest = (await client.get_latest_blockhash()).value
    known = await _raw(node, "isBlockhashValid", [str(latest.blockhash)])
    assert known["result"]["value"] is True  # type: ignore[index]
    assert latest.last_valid_block_height > (await client.get_block_height()).value


async def test_simulate_and_fee_for_message(client: AsyncClient) -> None:
    alice = await _funded(client, SOL)
    ix = transfer(
        TransferParams(from_pubkey=alice.pubkey(), to_pubkey=Keypair().pubkey(), lamports=5 * SOL)
    )
    tx = VersionedTransaction.from_bytes(await _signed(client, [ix], alice))
    simulated = (await client.simulate_transaction(tx)).value
    assert simulated.err == TransactionErrorInstructionError(0, InstructionErrorCustom(1))
    assert simulated.units_consumed
    ok = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=alice.pubkey(), lamports=1))
    good = VersionedTransaction.from_bytes(await _signed(client, [ok], alice))
    assert (await client.simulate_transaction(good, sig_verify=True)).value.err is None
    assert (await client.get_fee_for_message(good.message)).value == 5_000  # type: ignore[arg-type]
    assert (await client.get_minimum_balance_for_rent_exemption(165)).value > 0
    stale = VersionedTransaction(
        MessageV0.try_compile(alice.pubkey(), [ok], [], Hash.new_unique()), [alice]
    )
    assert (await client.simulate_transaction(stale)).value.err == (
        TransactionErrorFieldless.BlockhashNotFound
    )
    replaced = (
        await client.simulate_transaction(
            stale, replace_recent_blockhash=True, accounts_addresses=[alice.pubkey()]
        )
    ).value
    assert replaced.err is None
    assert replaced.replacement_blockhash is not None
    assert replaced.accounts is not None
    assert replaced.accounts[0] is not None
    assert replaced.accounts[0].lamports == SOL - 5_000  # the simulated fee, nothing committed
    assert (await client.get_balance(alice.pubkey())).value == SOL


async def _create_mint(client: AsyncClient, payer: Keypair, decimals: int) -> Pubkey:
    mint = Keypair()
    rent = (await client.get_minimum_balance_for_rent_exemption(82)).value
    await _send(
        client,
        [
            create_account(
                CreateAccountParams(
                    from_pubkey=payer.pubkey(),
                    to_pubkey=mint.pubkey(),
                    lamports=rent,
                    space=82,
                    owner=TOKEN_PROGRAM_ID,
                )
            ),
            initialize_mint2(
                InitializeMint2Params(
                    decimals=decimals,
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint.pubkey(),
                    mint_authority=payer.pubkey(),
                )
            ),
        ],
        payer,
        mint,
    )
    return mint.pubkey()


async def test_spl_mint_ata_and_transfer_checked_with_token_balances_in_meta(
    client: AsyncClient,
) -> None:
    alice, bob = await _funded(client), Keypair()
    mint = await _create_mint(client, alice, 6)
    alice_ata = get_associated_token_address(alice.pubkey(), mint)
    bob_ata = get_associated_token_address(bob.pubkey(), mint)
    await _send(
        client,
        [
            create_associated_token_account(alice.pubkey(), alice.pubkey(), mint),
            mint_to_checked(
                MintToCheckedParams(
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint,
                    dest=alice_ata,
                    mint_authority=alice.pubkey(),
                    amount=1_000_000_000,
                    decimals=6,
                )
            ),
        ],
        alice,
    )
    signature = await _send(
        client,
        [
            create_associated_token_account(alice.pubkey(), bob.pubkey(), mint),
            transfer_checked(
                TransferCheckedParams(
                    program_id=TOKEN_PROGRAM_ID,
                    source=alice_ata,
                    mint=mint,
                    dest=bob_ata,
                    owner=alice.pubkey(),
                    amount=250_000_000,
                    decimals=6,
                )
            ),
        ],
        alice,
    )
    balance = (await client.get_token_account_balance(bob_ata)).value
    assert (balance.amount, balance.decimals, balance.ui_amount_string) == ("250000000", 6, "250")
    supply = (await client.get_token_supply(mint)).value
    assert supply.amount == "1000000000"

    tx = (
        await client.get_transaction(
            Signature.from_string(signature), max_supported_transaction_version=0
        )
    ).value
    assert tx is not None
    meta = tx.transaction.meta
    assert meta is not None
    assert meta.err is None
    assert meta.fee == 5_000
    assert tx.slot > 0
    assert tx.block_time is not None
    assert meta.log_messages
    assert len(meta.pre_balances) == len(meta.post_balances)
    assert meta.pre_balances[0] - meta.post_balances[0] > 5_000  # fee + the new ATA's rent
    pre = {str(b.owner): b.ui_token_amount.amount for b in meta.pre_token_balances or []}
    post = {str(b.owner): b.ui_token_amount.amount for b in meta.post_token_balances or []}
    assert pre == {str(alice.pubkey()): "1000000000"}
    assert post == {str(alice.pubkey()): "750000000", str(bob.pubkey()): "250000000"}
    assert all(str(b.mint) == str(mint) for b in meta.post_token_balances or [])

    by_mint = (
        await client.get_token_accounts_by_owner(bob.pubkey(), TokenAccountOpts(mint=mint))
    ).value
    assert [str(item.pubkey) for item in by_mint] == [str(bob_ata)]
    by_program = (
        await client.get_token_accounts_by_owner_json_parsed(
            alice.pubkey(), TokenAccountOpts(program_id=TOKEN_PROGRAM_ID)
        )
    ).value
    assert len(by_program) == 1
    parsed: Any = by_program[0].account.data.parsed
    assert parsed["info"]["tokenAmount"]["amount"] == "750000000"
    assert parsed["info"]["mint"] == str(mint)
    accounts = (await client.get_multiple_accounts([alice_ata, Keypair().pubkey()])).value
    assert accounts[0] is not None
    assert accounts[0].owner == TOKEN_PROGRAM_ID
    assert accounts[1] is None


async def test_helpers_fund_mint_and_are_visible_over_rpc(
    node: LocalSolana, client: AsyncClient
) -> None:
    owner = Keypair()
    node.airdrop(owner.pubkey(), 3 * SOL)
    mint = node.create_mint(Keypair(), 6)
    ata = node.mint_to(mint, owner.pubkey(), 5_000_000)
    node.mint_to(mint, owner.pubkey(), 1)  # the ATA already exists: idempotent
    assert (await client.get_balance(owner.pubkey())).value == 3 * SOL
    assert (await client.get_token_account_balance(ata)).value.amount == "5000001"
    assert node.token_balance(ata) == 5_000_001
    assert (await client.get_account_info(mint)).value is not None


async def test_json_rpc_errors_for_unknown_methods_and_bad_input(node: LocalSolana) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        unknown = (await http.post("/", json={"jsonrpc": "2.0", "id": 7, "method": "nope"})).json()
        assert unknown == {
            "jsonrpc": "2.0",
            "error": {"code": -32601, "message": "Method not found"},
            "id": 7,
        }
        bad = await http.post(
            "/", json={"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": ["zz"]}
        )
        assert bad.json()["error"]["code"] == -32602
        garbage = (await http.post("/", content=b"{not json")).json()
        assert garbage["error"]["code"] == -32700
        batch = await http.post(
            "/",
            json=[
                {"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
                {"jsonrpc": "2.0", "id": 2, "method": "getSlot"},
            ],
        )
        assert [item["id"] for item in batch.json()] == [1, 2]
        assert (await http.get("/health")).text == "ok"


def test_base58_round_trip() -> None:
    key = Keypair().pubkey()
    assert b58encode(bytes(key)) == str(key)
    assert b58decode(str(key)) == bytes(key)
    assert b58encode(b"\0\0\1") == "112"
    assert b58decode("112") == b"\0\0\1"
    with pytest.raises(ValueError, match="invalid base58"):
        b58decode("0OIl")


async def test_fail_next_http500_then_recovers(node: LocalSolana, client: AsyncClient) -> None:
    node.fail_next(2, "http500")
    for _ in range(2):
        with pytest.raises(SolanaRpcException):
            await client.get_slot()
    assert (await client.get_slot()).value > 0


async def test_fail_next_timeout_stalls_until_the_client_gives_up(node: LocalSolana) -> None:
    node.fail_next(2, "timeout")  # solana-py retries a transport error once
    async with AsyncClient(node.url, timeout=0.2) as impatient:
        with pytest.raises(SolanaRpcException):
            await impatient.get_latest_blockhash()
        assert (await impatient.get_slot()).value > 0


async def test_an_unfunded_fee_payer_is_refused(client: AsyncClient) -> None:
    ghost = Keypair()
    ix = transfer(TransferParams(from_pubkey=ghost.pubkey(), to_pubkey=ghost.pubkey(), lamports=1))
    with pytest.raises(RPCException) as caught:
        await client.send_raw_transaction(await _signed(client, [ix], ghost))
    assert _preflight_error(caught) == TransactionErrorFieldless.AccountNotFound
    assert "no record of a prior credit" in caught.value.args[0].message


async def test_legacy_transactions_and_their_json(client: AsyncClient) -> None:
    alice, bob = await _funded(client), Keypair()
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=bob.pubkey(), lamports=SOL))
    legacy = Transaction.new_signed_with_payer([ix], alice.pubkey(), [alice], blockhash)
    signature = (await client.send_raw_transaction(bytes(legacy))).value
    await client.confirm_transaction(signature)
    found = (await client.get_transaction(signature)).value
    assert found is not None
    assert found.transaction.version == Legacy.Legacy
    assert found.transaction.meta is not None
    assert found.transaction.meta.post_balances[1] == SOL


async def test_v0_get_transaction_needs_max_supported_version(client: AsyncClient) -> None:
    alice = await _funded(client)
    ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=alice.pubkey(), lamports=1))
    signature = Signature.from_string(await _send(client, [ix], alice))
    with pytest.raises(RPCException) as caught:
        await client.get_transaction(signature)
    assert isinstance(caught.value.args[0], UnsupportedTransactionVersionMessage)
    found = (await client.get_transaction(signature, max_supported_transaction_version=0)).value
    assert found is not None
    assert found.transaction.version == 0
    assert (await client.get_transaction(Signature.new_unique(), "json", None, 0)).value is None


async def test_concurrent_transfers_all_land_in_distinct_slots(client: AsyncClient) -> None:
    wallets = [await _funded(client, SOL) for _ in range(20)]
    sink = (await _funded(client, SOL)).pubkey()

    async def pay(wallet: Keypair) -> str:
        ix = transfer(TransferParams(from_pubkey=wallet.pubkey(), to_pubkey=sink, lamports=1_000))
        return await _send(client, [ix], wallet)

    signatures = await asyncio.gather(*(pay(wallet) for wallet in wallets))
    statuses = (
        await client.get_signature_statuses([Signature.from_string(s) for s in signatures])
    ).value
    slots = [status.slot for status in statuses if status is not None and status.err is None]
    assert len(set(slots)) == len(wallets)
    assert (await client.get_balance(sink)).value == SOL + 20 * 1_000
