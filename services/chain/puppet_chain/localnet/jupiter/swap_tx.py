"""The swap transaction: both legs in one v0 message, already signed by the liquidity wallet."""

from __future__ import annotations

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.token.associated import get_associated_token_address
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import create_idempotent_associated_token_account, transfer_checked
from spl.token.models import TransferCheckedParams

from puppet_chain.localnet.jupiter.book import SOL_MINT, PriceBook
from puppet_chain.localnet.solana_rpc import LocalSolana


def swap_transaction(
    book: PriceBook,
    solana: LocalSolana,
    liquidity_key: Keypair,
    user: Pubkey,
    legs: tuple[tuple[Pubkey, int], tuple[Pubkey, int]],
) -> tuple[VersionedTransaction, int]:
    """(transaction, last valid block height): the user pays legs[0], the wallet pays legs[1].

    The user is the fee payer and still has to sign.
    """
    (input_mint, amount), (output_mint, out_amount) = legs
    liquidity = liquidity_key.pubkey()
    ixs = [
        *_leg(book, input_mint, amount, source=user, dest=liquidity, payer=user),
        *_leg(book, output_mint, out_amount, source=liquidity, dest=user, payer=user),
    ]
    blockhash, last_valid = solana.latest_blockhash()
    message = MessageV0.try_compile(user, ixs, [], blockhash)
    signers = message.account_keys[: message.header.num_required_signatures]
    own = liquidity_key.sign_message(to_bytes_versioned(message))
    signatures = [own if key == liquidity else Signature.default() for key in signers]
    return VersionedTransaction.populate(message, signatures), last_valid


def _leg(
    book: PriceBook, mint: Pubkey, amount: int, *, source: Pubkey, dest: Pubkey, payer: Pubkey
) -> list[Instruction]:
    if mint == SOL_MINT:
        params = TransferParams(from_pubkey=source, to_pubkey=dest, lamports=amount)
        return [transfer(params)]
    checked = TransferCheckedParams(
        program_id=TOKEN_PROGRAM_ID,
        source=get_associated_token_address(source, mint),
        mint=mint,
        dest=get_associated_token_address(dest, mint),
        owner=source,
        amount=amount,
        decimals=book.decimals(mint),
    )
    create = create_idempotent_associated_token_account(payer, dest, mint)
    return [create, transfer_checked(checked)]
