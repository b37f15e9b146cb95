"""LocalJupiter over HTTP: quote, swap, sign the user's slot, send on LocalSolana."""

import base64
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from puppet_chain.localnet import SOL_MINT, Embedded, LocalJupiter, embedded
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.associated import get_associated_token_address
from solders.transaction import VersionedTransaction

SOL = 1_000_000_000
FEE = 2 * 5_000  # two signatures: the user and the liquidity wallet


@pytest.fixture
def env() -> Iterator[Embedded]:
    with embedded(sol_usd=Decimal("150"), api_key="k") as started:
        yield started


@pytest.fixture
async def jup(env: Embedded) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=env.jupiter_url, headers={"x-api-key": "k"}) as http:
        yield http


@pytest.fixture
async def rpc(env: Embedded) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(env.rpc_url) as client:
        yield client


async def _quote(
    jup: httpx.AsyncClient, input_mint: Pubkey, output_mint: Pubkey, amount: int, slippage: int = 50
) -> dict[str, Any]:
    reply = await jup.get(
        "/swap/v1/quote",
        params={
            "inputMint": str(input_mint),
            "outputMint": str(output_mint),
            "amount": amount,
            "slippageBps": slippage,
        },
    )
    assert reply.status_code == 200, reply.text
    quote: dict[str, Any] = reply.json()
    return quote


async def _swap(
    jup: httpx.AsyncClient, rpc: AsyncClient, quote: dict[str, Any], user: Keypair
) -> str:
    reply = await jup.post(
        "/swap/v1/swap",
        json={
            "quoteResponse": quote,
            "userPublicKey": str(user.pubkey()),
            "wrapAndUnwrapSol": True,
            "dynamicComputeUnitLimit": True,
        },
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["lastValidBlockHeight"] > (await rpc.get_block_height()).value
    unsigned = VersionedTransaction.from_bytes(base64.b64decode(body["swapTransaction"]))
    assert unsigned.message.account_keys[0] == user.pubkey()  # the user pays the fee
    user_sig = user.sign_message(to_bytes_versioned(unsigned.message))
    signed = VersionedTransaction.populate(unsigned.message, [user_sig, *unsigned.signatures[1:]])
    signature = (await rpc.send_transaction(signed)).value
    await rpc.confirm_transaction(signature)
    return str(signature)


async def test_sol_to_usdc_swap_moves_balances_as_quoted(
    env: Embedded, jup: httpx.AsyncClient, rpc: AsyncClient
) -> None:
    user = Keypair()
    env.solana.airdrop(user.pubkey(), 5 * SOL)
    quote = await _quote(jup, SOL_MINT, env.usdc_mint, 2 * SOL)
    assert quote["inAmount"] == str(2 * SOL)
    assert quote["outAmount"] == "300000000"  # 2 SOL at 150 USD, 6-decimal USDC
    assert quote["otherAmountThreshold"] == str(300_000_000 * 9950 // 10_000)
    assert quote["swapMode"] == "ExactIn"
    assert quote["routePlan"][0]["swapInfo"]["outAmount"] == "300000000"
    liquidity_before = env.solana.balance(env.liquidity.pubkey())

    await _swap(jup, rpc, quote, user)

    user_ata = get_associated_token_address(user.pubkey(), env.usdc_mint)
    assert (await rpc.get_token_account_balance(user_ata)).value.amount == "300000000"
    ata_rent = (await rpc.get_minimum_balance_for_rent_exemption(165)).value
    assert (await rpc.get_balance(user.pubkey())).value == 3 * SOL - FEE - ata_rent
    assert env.solana.balance(env.liquidity.pubkey()) == liquidity_before + 2 * SOL


async def test_usdc_to_sol_swap_and_the_receipt_data(
    env: Embedded, jup: httpx.AsyncClient, rpc: AsyncClient
) -> None:
    user = Keypair()
    env.solana.airdrop(user.pubkey(), SOL)
    user_ata = env.solana.mint_to(env.usdc_mint, user.pubkey(), 75_000_000)  # 75 USDC
    quote = await _quote(jup, env.usdc_mint, SOL_MINT, 75_000_000)
    assert quote["outAmount"] == str(SOL // 2)

    signature = await _swap(jup, rpc, quote, user)

    assert env.solana.token_balance(user_ata) == 0
    assert (await rpc.get_balance(user.pubkey())).value == SOL + SOL // 2 - FEE
    tx = (
        await rpc.get_transaction(
            Signature.from_string(signature), max_supported_transaction_version=0
        )
    ).value
    assert tx is not None
    meta = tx.transaction.meta
    assert meta is not None
    assert meta.fee == FEE
    assert meta.post_balances[0] - meta.pre_balances[0] == SOL // 2 - FEE
    post = {str(b.owner): b.ui_token_amount.amount for b in meta.post_token_balances or []}
    assert post[str(user.pubkey())] == "0"


async def test_price_v3_shape_and_unknown_mints_are_omitted(
    env: Embedded, jup: httpx.AsyncClient
) -> None:
    unknown = str(Keypair().pubkey())
    reply = await jup.get("/price/v3", params={"ids": f"{SOL_MINT},{env.usdc_mint},{unknown}"})
    assert reply.status_code == 200
    prices = reply.json()
    assert set(prices) == {str(SOL_MINT), str(env.usdc_mint)}
    sol = prices[str(SOL_MINT)]
    assert (sol["usdPrice"], sol["decimals"]) == (150.0, 9)
    assert {"blockId", "priceChange24h", "createdAt", "liquidity"} <= set(sol)
    assert prices[str(env.usdc_mint)]["decimals"] == 6


async def test_errors_are_shaped_like_jupiter(env: Embedded, jup: httpx.AsyncClient) -> None:
    not_tradable = await jup.get(
        "/swap/v1/quote",
        params={"inputMint": str(SOL_MINT), "outputMint": str(Keypair().pubkey()), "amount": 1},
    )
    assert not_tradable.status_code == 400
    assert not_tradable.json()["errorCode"] == "TOKEN_NOT_TRADABLE"
    missing = await jup.get("/swap/v1/quote", params={"inputMint": str(SOL_MINT)})
    assert missing.status_code == 400
    assert set(missing.json()) == {"error", "errorCode"}
    too_big = await jup.get(
        "/swap/v1/quote",
        params={"inputMint": str(SOL_MINT), "outputMint": str(env.usdc_mint), "amount": 10**18},
    )
    assert too_big.json()["errorCode"] == "COULD_NOT_FIND_ANY_ROUTE"
    bad_swap = await jup.post("/swap/v1/swap", json={"userPublicKey": "x"})
    assert bad_swap.status_code == 400
    async with httpx.AsyncClient(base_url=env.jupiter_url) as anonymous:
        denied = await anonymous.get("/price/v3", params={"ids": str(SOL_MINT)})
    assert denied.status_code == 401


async def test_a_price_move_past_the_slippage_refuses_the_swap(
    env: Embedded, jup: httpx.AsyncClient
) -> None:
    quote = await _quote(jup, SOL_MINT, env.usdc_mint, SOL, slippage=100)
    env.jupiter.set_price(SOL_MINT, Decimal("140"))
    reply = await jup.post(
        "/swap/v1/swap", json={"quoteResponse": quote, "userPublicKey": str(Keypair().pubkey())}
    )
    assert reply.status_code == 400
    assert reply.json()["errorCode"] == "SLIPPAGE_TOLERANCE_EXCEEDED"


async def test_a_user_without_funds_fails_preflight(
    env: Embedded, jup: httpx.AsyncClient, rpc: AsyncClient
) -> None:
    user = Keypair()
    env.solana.airdrop(user.pubkey(), SOL // 10)
    quote = await _quote(jup, SOL_MINT, env.usdc_mint, SOL)
    with pytest.raises(RPCException):
        await _swap(jup, rpc, quote, user)


def test_a_standalone_jupiter_without_api_key(env: Embedded) -> None:
    with LocalJupiter(env.solana, env.liquidity, {str(SOL_MINT): Decimal(1)}) as plain:
        reply = httpx.get(f"{plain.url}/price/v3", params={"ids": str(SOL_MINT)})
    assert reply.json()[str(SOL_MINT)]["usdPrice"] == 1.0


async def test_fail_next_on_jupiter(env: Embedded, jup: httpx.AsyncClient) -> None:
    env.jupiter.fail_next(1, "http500")
    assert (await jup.get("/price/v3", params={"ids": str(SOL_MINT)})).status_code == 500
    env.jupiter.fail_next(1, "timeout")
    with pytest.raises(httpx.ReadTimeout):
        await jup.get("/price/v3", params={"ids": str(SOL_MINT)}, timeout=0.2)
    assert (await jup.get("/price/v3", params={"ids": str(SOL_MINT)})).status_code == 200
