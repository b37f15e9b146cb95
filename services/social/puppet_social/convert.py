"""Conversions between domain records and SocialService protos."""

from __future__ import annotations

import re
import unicodedata

from google.protobuf import timestamp_pb2
from puppet.social.v1 import social_pb2 as s

from puppet_social.accounts import SANDBOX, AccountRecord, Accounts
from puppet_social.network import PostRecord
from puppet_social.outbox import thread_parts
from puppet_social.store import Action, Mention, OutboxItem, State

URL = re.compile(r"https?://\S+")

KINDS = {
    Action.POST: s.ACTION_KIND_POST,
    Action.REPLY: s.ACTION_KIND_REPLY,
    Action.QUOTE: s.ACTION_KIND_QUOTE,
    Action.DELETE: s.ACTION_KIND_DELETE,
    Action.LIKE: s.ACTION_KIND_LIKE,
    Action.REPOST: s.ACTION_KIND_REPOST,
    Action.THREAD: s.ACTION_KIND_THREAD,
}

STATES = {
    State.QUEUED: s.OUTBOX_STATE_QUEUED,
    State.NEEDS_REVIEW: s.OUTBOX_STATE_NEEDS_REVIEW,
    State.APPROVED: s.OUTBOX_STATE_APPROVED,
    State.SENDING: s.OUTBOX_STATE_SENDING,
    State.SENT: s.OUTBOX_STATE_SENT,
    State.FAILED: s.OUTBOX_STATE_FAILED,
    State.REJECTED: s.OUTBOX_STATE_REJECTED,
}
PROTO_STATES = {v: k for k, v in STATES.items()}


def weighted_length(text: str) -> int:
    """X's weighted length: URLs count 23, wide characters and emoji 2, the rest 1."""
    total = 0
    rest = URL.sub("", text)
    total += 23 * len(URL.findall(text))
    for char in rest:
        wide = unicodedata.east_asian_width(char) in ("W", "F") or ord(char) > 0xFFFF
        total += 2 if wide else 1
    return total


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1_000_000_000))
    return ts


def account(record: AccountRecord) -> s.Account:
    out = s.Account(
        name=f"accounts/{record.account_id}",
        network=s.NETWORK_SANDBOX if record.network == SANDBOX else s.NETWORK_X,
        user_id=record.user_id,
        handle=record.handle,
        display_name=record.display_name,
        agents=list(record.agents),
        review_required=record.review_required,
        daily_post_cap=record.daily_post_cap,
        operator=record.operator,
        has_credentials=record.credentials is not None,
        credentials_rejected=record.credentials_rejected,
        create_time=timestamp(record.create_time),
    )
    if record.verify_time:
        out.verify_time.CopyFrom(timestamp(record.verify_time))
    return out


def post_name(account_id: str, post_id: str) -> str:
    return f"accounts/{account_id}/posts/{post_id}"


def _texts(row: OutboxItem) -> list[str]:
    if row.action is Action.THREAD:
        return thread_parts(row.text)
    return [row.text] if row.text else []


def item(row: OutboxItem) -> s.OutboxItem:
    out = s.OutboxItem(
        name=f"accounts/{row.account}/outbox/{row.id}",
        request_id=row.request_id,
        kind=KINDS[row.action],
        state=STATES[row.state],
        texts=_texts(row),
        target=post_name(row.account, row.target_post_id) if row.target_post_id else "",
        attempts=row.attempts,
        agent=row.agent,
        create_time=timestamp(row.created_at),
        update_time=timestamp(row.updated_at),
    )
    if row.state is State.SENT and row.network_post_id:
        # A thread keeps every part's id, in order, separated by spaces.
        out.posts.extend(post_name(row.account, i) for i in row.network_post_id.split())
    if row.state in (State.QUEUED, State.APPROVED):
        out.next_attempt_time.CopyFrom(timestamp(row.next_attempt_at))
    if row.state is State.FAILED:
        out.error_reason = row.error_reason
        out.error_message = f"The network refused the action ({row.error_reason})."
    if row.state is State.REJECTED:
        out.review_note = row.error_reason
    return out


def post(record: PostRecord, through: str, accounts: Accounts) -> s.Post:
    author = accounts.by_user_id(record.author_id)
    return s.Post(
        name=post_name(through, record.id),
        id=record.id,
        text=record.text,
        author_user_id=record.author_id,
        author_handle=record.author_handle,
        author_account=f"accounts/{author.account_id}" if author is not None else "",
        create_time=timestamp(record.created_at.timestamp()),
        in_reply_to=post_name(through, record.in_reply_to_id) if record.in_reply_to_id else "",
        quoted_post=post_name(through, record.quote_of_id) if record.quote_of_id else "",
        conversation_id=record.conversation_id,
        mentioned_handles=list(record.mentioned_handles),
    )


def mention(row: Mention, accounts: Accounts) -> s.Mention:
    return s.Mention(
        name=f"accounts/{row.account}/mentions/{row.post.id}",
        post=post(row.post, row.account, accounts),
        receive_time=timestamp(row.received_at),
        depth=row.depth,
    )
