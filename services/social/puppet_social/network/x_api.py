"""The network port on X API v2: httpx, OAuth 1.0a user context, rate headers parsed."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from puppet_social.network import (
    AccountRef,
    CredentialsRejected,
    DuplicateContent,
    NetworkError,
    PostNotFound,
    PostRecord,
    RateInfo,
    RateLimited,
    Result,
    Transient,
    Unauthorized,
)
from puppet_social.network._oauth1 import authorization

log = logging.getLogger(__name__)

TWEET_FIELDS = "author_id,created_at,conversation_id,referenced_tweets,entities"
USER_POSTS = "GET /2/users/:id/tweets"
RECENT_PAGES = 5
"""Pages of own posts reconcile reads at most (100 each): more than any crash window holds."""
_MENTION = re.compile(r"(?<![\w@])@(\w{1,15})")
_DUPLICATE = re.compile(r"duplicate", re.IGNORECASE)


def _int(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def parse_rate(endpoint: str, headers: httpx.Headers) -> RateInfo | None:
    """RateInfo from x-rate-limit-* and x-user-limit-24hour-*, or None if X sent neither."""
    values = [
        _int(headers, f"x-{kind}-{field}")
        for kind in ("rate-limit", "user-limit-24hour")
        for field in ("limit", "remaining", "reset")
    ]
    if all(v is None for v in values):
        return None
    limit, remaining, reset, day_limit, day_remaining, day_reset = values
    return RateInfo(
        endpoint=endpoint,
        limit=limit,
        remaining=remaining,
        reset_at=float(reset) if reset is not None else None,
        day_limit=day_limit,
        day_remaining=day_remaining,
        day_reset_at=float(day_reset) if day_reset is not None else None,
    )


def _errors(body: Any) -> list[Mapping[str, Any]]:
    """v2 problems (errors[]), a problem+json body or a v1.1-style {code, message}, as a list."""
    if not isinstance(body, Mapping):
        return []
    found = [e for e in body.get("errors") or [] if isinstance(e, Mapping)]
    if not found and ("detail" in body or "message" in body or "title" in body):
        found = [body]
    return found


def _describe(errors: Sequence[Mapping[str, Any]]) -> str:
    texts = [str(e.get("detail") or e.get("message") or e.get("title") or "") for e in errors]
    return "; ".join(t for t in texts if t)[:300]


def _not_found(errors: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        e.get("title") == "Not Found Error" or str(e.get("type", "")).endswith("resource-not-found")
        for e in errors
    )


def _record(post: Mapping[str, Any], users: Mapping[str, str]) -> PostRecord:
    # The wire says referenced_tweets; spec 2.167 renamed it referenced_posts: accept both.
    raw_refs = post.get("referenced_tweets") or post.get("referenced_posts") or []
    refs = {r.get("type"): str(r.get("id")) for r in raw_refs}
    mentions = (post.get("entities") or {}).get("mentions") or []
    author_id = str(post.get("author_id", ""))
    created = post.get("created_at")
    return PostRecord(
        id=str(post["id"]),
        author_id=author_id,
        author_handle=users.get(author_id, ""),
        text=str(post.get("text", "")),
        created_at=datetime.fromisoformat(created) if created else datetime.now(UTC),
        conversation_id=str(post.get("conversation_id") or post["id"]),
        in_reply_to_id=refs.get("replied_to"),
        quote_of_id=refs.get("quoted"),
        mentioned_handles=tuple(str(m.get("username", "")) for m in mentions),
    )


def _users(body: Mapping[str, Any]) -> dict[str, str]:
    users = (body.get("includes") or {}).get("users") or []
    return {str(u["id"]): str(u.get("username", "")) for u in users if "id" in u}


class XApiNetwork:
    """X API v2 as one account sees it; one keep-alive httpx client for all accounts."""

    def __init__(self, *, base_url: str = "https://api.x.com", timeout_s: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._user_ids: dict[str, str] = {}

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(
        self,
        account: AccountRef,
        method: str,
        path: str,
        endpoint: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], RateInfo | None]:
        creds = account.credentials
        if creds is None:
            raise Unauthorized(f"{endpoint}: @{account.handle} has no credentials")
        secrets = [
            s.get_secret_value()
            for s in (
                creds.api_key,
                creds.api_key_secret,
                creds.access_token,
                creds.access_token_secret,
            )
        ]
        url = self._base + path + ("?" + urlencode(params, quote_via=quote) if params else "")
        header = authorization(
            method,
            url,
            consumer_key=secrets[0],
            consumer_secret=secrets[1],
            token=secrets[2],
            token_secret=secrets[3],
        )
        try:
            response = await self._client.request(
                method, url, json=body, headers={"authorization": header}
            )
        except httpx.TimeoutException:
            raise Transient(f"{endpoint}: no answer within {self._timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise Transient(f"{endpoint}: {type(exc).__name__}") from None
        rate = parse_rate(endpoint, response.headers)
        try:
            payload: Any = response.json() if response.content else {}
        except ValueError:
            payload = {}
        errors = _errors(payload)
        detail = _describe(errors)
        for secret in secrets:
            if secret:
                detail = detail.replace(secret, "***")
        status = response.status_code
        log.debug(
            "%s as @%s: %d (remaining %s)",
            endpoint,
            account.handle,
            status,
            rate.remaining if rate else "?",
        )
        message = f"{endpoint}: HTTP {status}" + (f": {detail}" if detail else "")
        if status == 429:
            raise RateLimited(message, rate)
        if status == 403 and (
            _DUPLICATE.search(detail) or any(e.get("code") == 187 for e in errors)
        ):
            raise DuplicateContent(message, rate)
        if status == 401:
            raise CredentialsRejected(message, rate)
        if status == 403:
            raise Unauthorized(message, rate)
        if status == 404 or (
            not (isinstance(payload, dict) and "data" in payload) and _not_found(errors)
        ):
            raise PostNotFound(message, rate)
        if status >= 500:
            raise Transient(message, rate)
        if status >= 400 or not isinstance(payload, dict):
            raise NetworkError(message, rate)
        return payload, rate

    async def _user_id(self, account: AccountRef) -> str:
        if account.user_id:
            return account.user_id
        token = account.credentials.access_token.get_secret_value() if account.credentials else ""
        if token not in self._user_ids:
            await self.me(account)
        return self._user_ids[token]

    async def me(self, account: AccountRef) -> tuple[str, str]:
        body, _ = await self._call(account, "GET", "/2/users/me", "GET /2/users/me")
        data = body.get("data") or {}
        user_id, handle = str(data.get("id", "")), str(data.get("username", ""))
        if account.credentials is not None and user_id:
            self._user_ids[account.credentials.access_token.get_secret_value()] = user_id
        return user_id, handle

    async def create_post(
        self,
        account: AccountRef,
        text: str,
        *,
        reply_to: str | None = None,
        quote_of: str | None = None,
    ) -> Result:
        """The new post's conversation_id is its own id, or "" for a reply (X does not say)."""
        request: dict[str, Any] = {"text": text}
        if reply_to:
            request["reply"] = {"in_reply_to_tweet_id": reply_to}
        if quote_of:
            request["quote_tweet_id"] = quote_of
        body, rate = await self._call(account, "POST", "/2/tweets", "POST /2/tweets", body=request)
        data = body.get("data") or {}
        post_id = str(data.get("id", ""))
        post = PostRecord(
            id=post_id,
            author_id=account.user_id,
            author_handle=account.handle,
            text=str(data.get("text", text)),
            created_at=datetime.now(UTC),
            conversation_id="" if reply_to else post_id,
            in_reply_to_id=reply_to,
            quote_of_id=quote_of,
            mentioned_handles=tuple(_MENTION.findall(text)),
        )
        return Result(post=post, rate=rate)

    async def delete_post(self, account: AccountRef, post_id: str) -> Result:
        _, rate = await self._call(
            account, "DELETE", f"/2/tweets/{quote(post_id, safe='')}", "DELETE /2/tweets/:id"
        )
        return Result(rate=rate)

    async def like(self, account: AccountRef, post_id: str) -> Result:
        user_id = await self._user_id(account)
        _, rate = await self._call(
            account,
            "POST",
            f"/2/users/{quote(user_id, safe='')}/likes",
            "POST /2/users/:id/likes",
            body={"tweet_id": post_id},
        )
        return Result(rate=rate)

    async def repost(self, account: AccountRef, post_id: str) -> Result:
        user_id = await self._user_id(account)
        _, rate = await self._call(
            account,
            "POST",
            f"/2/users/{quote(user_id, safe='')}/retweets",
            "POST /2/users/:id/retweets",
            body={"tweet_id": post_id},
        )
        return Result(rate=rate)

    async def get_post(self, account: AccountRef, post_id: str) -> Result:
        body, rate = await self._call(
            account,
            "GET",
            f"/2/tweets/{quote(post_id, safe='')}",
            "GET /2/tweets/:id",
            params=[
                ("tweet.fields", TWEET_FIELDS),
                ("expansions", "author_id"),
                ("user.fields", "username"),
            ],
        )
        data = body.get("data")
        if not isinstance(data, dict):
            raise PostNotFound(f"GET /2/tweets/:id: no post {post_id}", rate)
        return Result(post=_record(data, _users(body)), rate=rate)

    async def conversation(
        self, account: AccountRef, post_id: str, *, limit: int = 20
    ) -> Sequence[PostRecord]:
        """Search the last 7 days of the conversation (X's recent search) plus its root."""
        target = (await self.get_post(account, post_id)).post
        assert target is not None
        body, _ = await self._call(
            account,
            "GET",
            "/2/tweets/search/recent",
            "GET /2/tweets/search/recent",
            params=[
                ("query", f"conversation_id:{target.conversation_id}"),
                ("max_results", str(min(max(limit, 10), 100))),
                ("tweet.fields", TWEET_FIELDS),
                ("expansions", "author_id"),
                ("user.fields", "username"),
            ],
        )
        users = _users(body)
        posts = {p.id: p for p in (_record(d, users) for d in body.get("data") or [])}
        posts[target.id] = target
        if target.conversation_id not in posts:
            try:
                root = (await self.get_post(account, target.conversation_id)).post
            except PostNotFound:
                root = None
            if root is not None:
                posts[root.id] = root
        ordered = sorted(
            (p for p in posts.values() if _id_key(p.id) <= _id_key(post_id)),
            key=lambda p: _id_key(p.id),
        )
        return ordered[-limit:] if limit > 0 else []

    async def user_posts(
        self,
        account: AccountRef,
        *,
        start_time: float | None = None,
        page_token: str = "",
        limit: int = 100,
    ) -> tuple[list[PostRecord], str]:
        """One page of the account's own posts, newest first, and the next page's token ("").

        X pages by at least 5: a smaller page continues with until_id, a full one with X's
        pagination_token; the token says which.
        """
        user_id = await self._user_id(account)
        params = [
            ("max_results", str(min(max(limit, 5), 100))),
            ("tweet.fields", TWEET_FIELDS),
            ("expansions", "author_id"),
            ("user.fields", "username"),
        ]
        if start_time is not None:
            start = datetime.fromtimestamp(int(start_time), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            params.append(("start_time", start))
        if page_token.startswith("until:"):
            params.append(("until_id", page_token.removeprefix("until:")))
        elif page_token:
            params.append(("pagination_token", page_token))
        body, _ = await self._call(
            account,
            "GET",
            f"/2/users/{quote(user_id, safe='')}/tweets",
            USER_POSTS,
            params=params,
        )
        users = _users(body)
        posts = sorted(
            (_record(d, users) for d in body.get("data") or []),
            key=lambda p: _id_key(p.id),
            reverse=True,
        )
        meta = body.get("meta") or {}
        if len(posts) > limit > 0:
            return posts[:limit], f"until:{posts[limit - 1].id}"
        return posts, str(meta.get("next_token") or "")

    async def recent_posts(self, account: AccountRef, *, since: float) -> list[PostRecord]:
        """The account's posts created at or after since (whole seconds), oldest first.

        What outbox reconcile reads after a crash to learn whether a claimed post went out.
        """
        found: list[PostRecord] = []
        token = ""
        for _ in range(RECENT_PAGES):
            page, token = await self.user_posts(account, start_time=since, page_token=token)
            found.extend(page)
            if not token:
                break
        return sorted(found, key=lambda p: _id_key(p.id))

    async def mentions(
        self, account: AccountRef, *, since_id: str | None = None, limit: int = 100
    ) -> tuple[Sequence[PostRecord], RateInfo | None]:
        user_id = await self._user_id(account)
        params = [
            ("max_results", str(min(max(limit, 5), 100))),
            ("tweet.fields", TWEET_FIELDS),
            ("expansions", "author_id"),
            ("user.fields", "username"),
        ]
        if since_id:
            params.append(("since_id", since_id))
        body, rate = await self._call(
            account,
            "GET",
            f"/2/users/{quote(user_id, safe='')}/mentions",
            "GET /2/users/:id/mentions",
            params=params,
        )
        users = _users(body)
        posts = sorted(
            (_record(d, users) for d in body.get("data") or []), key=lambda p: _id_key(p.id)
        )
        return posts[:limit], rate


def _id_key(post_id: str) -> tuple[int, str]:
    """Snowflake ids order by time; compare numerically (longer is newer)."""
    return (len(post_id), post_id)
