"""The sandbox network's SQLite side: one connection on its own thread, one hop per call."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Concatenate, ParamSpec, TypeVar

from puppet_social.network import (
    AccountRef,
    DuplicateContent,
    NetworkError,
    PostNotFound,
    PostRecord,
    RateInfo,
    RateLimited,
    Unauthorized,
)

P = ParamSpec("P")
T = TypeVar("T")

WINDOW_S = 15 * 60.0
DAY_S = 24 * 3600.0
TWEPOCH_MS = 1_288_834_974_657
"""X's snowflake epoch; ids are (ms since it) << 22 | sequence."""
FIRST_USER_ID = 1_000_000_001
HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
MENTION = re.compile(r"(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_@])")

POSTS = "POST /2/tweets"
DELETE = "DELETE /2/tweets/:id"
LIKES = "POST /2/users/:id/likes"
RETWEETS = "POST /2/users/:id/retweets"
LOOKUP = "GET /2/tweets/:id"
SEARCH = "GET /2/tweets/search/recent"
MENTIONS = "GET /2/users/:id/mentions"

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    user_id INTEGER PRIMARY KEY,
    handle TEXT NOT NULL,
    handle_key TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    operator INTEGER NOT NULL,
    tier TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS posts (
    id INTEGER PRIMARY KEY,
    author_id INTEGER NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL,
    conversation_id INTEGER NOT NULL,
    in_reply_to_id INTEGER,
    quote_of_id INTEGER,
    mentions TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_author ON posts (author_id, id);
CREATE INDEX IF NOT EXISTS posts_text ON posts (author_id, text);
CREATE INDEX IF NOT EXISTS posts_conversation ON posts (conversation_id, id);
CREATE TABLE IF NOT EXISTS mentioned (
    user_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, post_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS likes (
    user_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, post_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reposts (
    user_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, post_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS windows (
    user_id INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    span REAL NOT NULL,
    start REAL NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (user_id, endpoint, span)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

POST_COLUMNS = (
    "p.id, p.author_id, a.handle, p.text, p.created_at, p.conversation_id, p.in_reply_to_id,"
    " p.quote_of_id, p.mentions"
)
POST_FROM = "posts p JOIN accounts a ON a.user_id = p.author_id"


@dataclass(frozen=True, slots=True)
class TierLimits:
    """Simulated X limits of one access tier, per user; None means no limit."""

    posts_per_15min: int | None
    posts_per_24h: int | None
    mention_reads_per_15min: int | None


UNLIMITED = TierLimits(None, None, None)


@dataclass(frozen=True, slots=True)
class SandboxAccount:
    """One account of the sandbox network."""

    user_id: str
    handle: str
    display_name: str
    operator: bool
    tier: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Caller:
    """The account a call runs as, resolved, with the limits of its tier."""

    user_id: int
    handle: str
    limits: TierLimits


@dataclass(frozen=True, slots=True)
class Acting:
    """Who a port call runs as, resolved to a Caller on the database thread (same hop)."""

    account: AccountRef
    tiers: Mapping[str, TierLimits]

    def resolve(self, db: sqlite3.Connection) -> Caller:
        return resolve(db, self.account.handle, self.account.user_id, self.tiers)


class HandleTaken(ValueError):
    """Another sandbox account already has this handle (compared case-insensitively)."""


class AccountNotFound(Unauthorized):
    """No sandbox account has this handle (or user id): X would reject its credentials."""


PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=OFF")


def write(
    db: sqlite3.Connection,
    work: Callable[Concatenate[sqlite3.Connection, P], T | NetworkError],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """work in one transaction; a NetworkError it returns is committed first, then raised.

    X counts a refused request (duplicate, unknown post) against the window, so the count must
    survive the refusal; an exception raised by work rolls everything back.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        out = work(db, *args, **kwargs)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    if isinstance(out, NetworkError):
        raise out
    return out


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _id(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else None


def _record(row: tuple[object, ...]) -> PostRecord:
    pid, author, handle, text, created, conv, reply, quote, mentions = row
    assert isinstance(created, float)
    assert isinstance(mentions, str)
    return PostRecord(
        id=str(pid),
        author_id=str(author),
        author_handle=str(handle),
        text=str(text),
        created_at=_when(created),
        conversation_id=str(conv),
        in_reply_to_id=None if reply is None else str(reply),
        quote_of_id=None if quote is None else str(quote),
        mentioned_handles=tuple(mentions.split()),
    )


def _account(row: tuple[object, ...]) -> SandboxAccount:
    user_id, handle, display, operator, tier, created = row
    assert isinstance(created, float)
    return SandboxAccount(
        str(user_id), str(handle), str(display), bool(operator), str(tier), _when(created)
    )


def create_account(
    db: sqlite3.Connection, handle: str, display_name: str, operator: bool, tier: str, now: float
) -> SandboxAccount:
    """Insert an account; user ids are increasing numeric strings like X's."""
    if db.execute("SELECT 1 FROM accounts WHERE handle_key = ?", (handle.lower(),)).fetchone():
        raise HandleTaken(f"handle @{handle} is taken")
    (last,) = db.execute("SELECT MAX(user_id) FROM accounts").fetchone()
    user_id = max(FIRST_USER_ID, (last or 0) + 1)
    db.execute(
        "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?)",
        (user_id, handle, handle.lower(), display_name, int(operator), tier, now),
    )
    return SandboxAccount(str(user_id), handle, display_name, operator, tier, _when(now))


def list_accounts(db: sqlite3.Connection) -> list[SandboxAccount]:
    rows = db.execute(
        "SELECT user_id, handle, display_name, operator, tier, created_at FROM accounts"
        " ORDER BY user_id"
    ).fetchall()
    return [_account(row) for row in rows]


def resolve(
    db: sqlite3.Connection, handle: str, user_id: str, tiers: Mapping[str, TierLimits]
) -> Caller:
    """The account by handle (case-insensitive), else by user id; AccountNotFound if neither."""
    if handle:
        row = db.execute(
            "SELECT user_id, handle, tier FROM accounts WHERE handle_key = ?",
            (handle.lstrip("@").lower(),),
        ).fetchone()
    else:
        row = db.execute(
            "SELECT user_id, handle, tier FROM accounts WHERE user_id = ?", (_id(user_id),)
        ).fetchone()
    if row is None:
        raise AccountNotFound(f"no sandbox account @{handle or user_id}")
    return Caller(row[0], row[1], tiers.get(row[2], UNLIMITED))


def _window(
    db: sqlite3.Connection, user_id: int, endpoint: str, span: float, now: float
) -> tuple[float, int]:
    """(start, used) of the account's current window, a new one if the last has ended."""
    row = db.execute(
        "SELECT start, used FROM windows WHERE user_id = ? AND endpoint = ? AND span = ?",
        (user_id, endpoint, span),
    ).fetchone()
    if row is None or now >= row[0] + span:
        return now, 0
    return float(row[0]), int(row[1])


def _spend(
    db: sqlite3.Connection,
    caller: Caller,
    endpoint: str,
    now: float,
    limit: int | None,
    day_limit: int | None = None,
) -> RateInfo:
    """Count one request against the endpoint's 15-minute and 24-hour windows, as X does.

    The answer is what X's x-rate-limit-* and x-user-limit-24hour-* headers would say after the
    call; when a window is used up the call is not counted and RateLimited carries the headroom.
    """
    heads: list[tuple[int | None, int | None, float | None]] = []
    counts: list[tuple[float, float, int]] = []
    for span, cap in ((WINDOW_S, limit), (DAY_S, day_limit)):
        if cap is None:
            heads.append((None, None, None))
            continue
        start, used = _window(db, caller.user_id, endpoint, span, now)
        heads.append((cap, cap - used, start + span))
        counts.append((span, start, used))
    (cap, left, reset), (day_cap, day_left, day_reset) = heads
    if (left is not None and left <= 0) or (day_left is not None and day_left <= 0):
        info = RateInfo(endpoint, cap, left, reset, day_cap, day_left, day_reset)
        raise RateLimited(f"rate limit exceeded on {endpoint}", info)
    for span, start, used in counts:
        db.execute(
            "INSERT OR REPLACE INTO windows VALUES (?, ?, ?, ?, ?)",
            (caller.user_id, endpoint, span, start, used + 1),
        )
    left = None if left is None else left - 1
    day_left = None if day_left is None else day_left - 1
    return RateInfo(endpoint, cap, left, reset, day_cap, day_left, day_reset)


def _post(db: sqlite3.Connection, post_id: int | None) -> PostRecord | None:
    row = db.execute(
        f"SELECT {POST_COLUMNS} FROM {POST_FROM} WHERE p.id = ?", (post_id,)
    ).fetchone()
    return None if row is None else _record(row)


def _handles(db: sqlite3.Connection, text: str) -> list[tuple[int, str]]:
    """(user_id, handle) of the sandbox accounts @-mentioned in text, in order, once each."""
    seen: dict[str, None] = dict.fromkeys(m.lower() for m in MENTION.findall(text))
    out = []
    for key in seen:
        row = db.execute("SELECT user_id, handle FROM accounts WHERE handle_key = ?", (key,))
        found = row.fetchone()
        if found is not None:
            out.append((int(found[0]), str(found[1])))
    return out


def _next_id(db: sqlite3.Connection, now: float) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = 'last_post_id'").fetchone()
    last = 0 if row is None else int(row[0])
    post_id = max(last + 1, max(0, int(now * 1000) - TWEPOCH_MS) << 22)
    db.execute("INSERT OR REPLACE INTO meta VALUES ('last_post_id', ?)", (post_id,))
    return post_id


def create_post(
    db: sqlite3.Connection,
    who: Acting,
    text: str,
    reply_to: str | None,
    quote_of: str | None,
    now: float,
) -> tuple[PostRecord, RateInfo] | NetworkError:
    caller = who.resolve(db)
    limits = caller.limits
    rate = _spend(db, caller, POSTS, now, limits.posts_per_15min, limits.posts_per_24h)
    parent = None
    if reply_to is not None:
        parent = _post(db, _id(reply_to))
        if parent is None:
            return PostNotFound(f"post {reply_to} to reply to does not exist", rate)
    if quote_of is not None and _post(db, _id(quote_of)) is None:
        return PostNotFound(f"post {quote_of} to quote does not exist", rate)
    duplicate = db.execute(
        "SELECT 1 FROM posts WHERE author_id = ? AND text = ? AND created_at > ? LIMIT 1",
        (caller.user_id, text, now - DAY_S),
    ).fetchone()
    if duplicate:
        return DuplicateContent(
            "You are not allowed to create a Tweet with duplicate content.", rate
        )
    post_id = _next_id(db, now)
    conversation = post_id if parent is None else int(parent.conversation_id)
    mentioned = _handles(db, text)
    db.execute(
        "INSERT INTO posts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            post_id,
            caller.user_id,
            text,
            now,
            conversation,
            None if parent is None else int(parent.id),
            None if quote_of is None else int(quote_of),
            " ".join(handle for _, handle in mentioned),
        ),
    )
    notified = {user_id for user_id, _ in mentioned}
    if parent is not None:
        notified.add(int(parent.author_id))
    notified.discard(caller.user_id)
    db.executemany("INSERT INTO mentioned VALUES (?, ?)", [(u, post_id) for u in notified])
    record = _post(db, post_id)
    assert record is not None
    return record, rate


def delete_post(
    db: sqlite3.Connection, who: Acting, post_id: str, now: float
) -> RateInfo | NetworkError:
    caller = who.resolve(db)
    rate = _spend(db, caller, DELETE, now, None)
    post = _post(db, _id(post_id))
    if post is None:
        return PostNotFound(f"post {post_id} does not exist", rate)
    if post.author_id != str(caller.user_id):
        return Unauthorized("You are not allowed to delete a Tweet you did not author.", rate)
    db.execute("DELETE FROM posts WHERE id = ?", (int(post.id),))
    for table in ("mentioned", "likes", "reposts"):
        db.execute(f"DELETE FROM {table} WHERE post_id = ?", (int(post.id),))
    return rate


def react(
    db: sqlite3.Connection, who: Acting, table: str, post_id: str, now: float
) -> RateInfo | NetworkError:
    """Like or repost (table likes/reposts); doing it twice is harmless, as on X."""
    caller = who.resolve(db)
    rate = _spend(db, caller, LIKES if table == "likes" else RETWEETS, now, None)
    if _post(db, _id(post_id)) is None:
        return PostNotFound(f"post {post_id} does not exist", rate)
    db.execute(f"INSERT OR IGNORE INTO {table} VALUES (?, ?)", (caller.user_id, int(post_id)))
    return rate


def get_post(db: sqlite3.Connection, who: Acting, post_id: str) -> PostRecord | None:
    who.resolve(db)
    return _post(db, _id(post_id))


def conversation(
    db: sqlite3.Connection, who: Acting, post_id: str, limit: int
) -> list[PostRecord] | None:
    """The last `limit` posts of post_id's conversation up to and including it, oldest first."""
    who.resolve(db)
    post = _post(db, _id(post_id))
    if post is None:
        return None
    rows = db.execute(
        f"SELECT {POST_COLUMNS} FROM {POST_FROM} WHERE p.conversation_id = ? AND p.id <= ?"
        " ORDER BY p.id DESC LIMIT ?",
        (int(post.conversation_id), int(post.id), max(limit, 1)),
    ).fetchall()
    return [_record(row) for row in reversed(rows)]


def mentions(
    db: sqlite3.Connection, who: Acting, since_id: str | None, limit: int, now: float
) -> tuple[list[PostRecord], RateInfo] | NetworkError:
    """Oldest first: the first `limit` after since_id, or without it the newest `limit`."""
    caller = who.resolve(db)
    rate = _spend(db, caller, MENTIONS, now, caller.limits.mention_reads_per_15min)
    base = (
        f"SELECT {POST_COLUMNS} FROM mentioned m JOIN posts p ON p.id = m.post_id"
        " JOIN accounts a ON a.user_id = p.author_id"
    )
    if since_id is None:
        rows = db.execute(
            f"{base} WHERE m.user_id = ? ORDER BY m.post_id DESC LIMIT ?", (caller.user_id, limit)
        ).fetchall()
        rows.reverse()
    else:
        since = _id(since_id)
        if since is None:
            return NetworkError(f"since_id {since_id!r} is not a post id", rate)
        rows = db.execute(
            f"{base} WHERE m.user_id = ? AND m.post_id > ? ORDER BY m.post_id LIMIT ?",
            (caller.user_id, since, limit),
        ).fetchall()
    return [_record(row) for row in rows], rate


def recent_posts(db: sqlite3.Connection, who: Acting, since: float) -> list[PostRecord]:
    caller = who.resolve(db)
    rows = db.execute(
        f"SELECT {POST_COLUMNS} FROM {POST_FROM} WHERE p.author_id = ? AND p.created_at >= ?"
        " ORDER BY p.id",
        (caller.user_id, since),
    ).fetchall()
    return [_record(row) for row in rows]


def page(
    db: sqlite3.Connection, handle: str | None, after_id: str | None, limit: int
) -> list[PostRecord]:
    """Newest first; after_id is the last id of the previous page (only older posts follow)."""
    where: list[str] = []
    args: list[object] = []
    if handle is not None:
        where.append("p.author_id = ?")
        args.append(resolve(db, handle, "", {}).user_id)
    if after_id is not None:
        where.append("p.id < ?")
        args.append(_id(after_id) or 0)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = db.execute(
        f"SELECT {POST_COLUMNS} FROM {POST_FROM}{clause} ORDER BY p.id DESC LIMIT ?",
        (*args, max(limit, 0)),
    ).fetchall()
    return [_record(row) for row in rows]
