"""SocialServicer: validate the request, call the outbox, poller or network, answer with protos."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from google.protobuf import timestamp_pb2
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from puppet_runtime import Context, paging
from puppet_runtime.admin import AdminGuard

from puppet_social import convert, errors
from puppet_social.accounts import (
    SANDBOX,
    AccountExists,
    AccountRecord,
    StoredCredentials,
    X,
    with_changes,
)
from puppet_social.mentions import MentionsLagged
from puppet_social.network import (
    NetworkError,
    PostNotFound,
    RateLimited,
    Transient,
    Unauthorized,
)
from puppet_social.network.sandbox import HandleTaken, SandboxNetwork
from puppet_social.network.x_api import XApiNetwork
from puppet_social.outbox import thread_text
from puppet_social.planner import DAY_S, DEFAULT_POLICIES, ENDPOINTS, POSTS, reset_of
from puppet_social.store import POSTING, Action, OutboxItem, State

if TYPE_CHECKING:
    from puppet_social.server import Social

ACCOUNT_ID = re.compile(r"[a-z0-9_-]{1,64}")
ACCOUNT = re.compile(r"accounts/([a-z0-9_-]{1,64}|-)")
POST = re.compile(r"accounts/([a-z0-9_-]{1,64}|-)/posts/([0-9A-Za-z_-]{1,64})")
ITEM = re.compile(r"accounts/([a-z0-9_-]{1,64})/outbox/([0-9a-f]{1,64})")
AGENT = re.compile(r"agents/[a-z0-9_-]{1,64}")
X_PAGE_MAX = 100
MASK_FIELDS = ("display_name", "agents", "review_required", "daily_post_cap")


def _page_size(size: int) -> int:
    if size < 0:
        raise errors.invalid_field("page_size", "must not be negative")
    return min(size or paging.DEFAULT_PAGE_SIZE, paging.MAX_PAGE_SIZE)


def _cursor(query: str, token: str) -> Any:
    if not token:
        return None
    try:
        return paging.decode(query, token)
    except ValueError as err:
        raise errors.invalid_field("page_token", str(err)) from None


def _request_id(value: str, *, required: bool) -> str:
    if not value and not required:
        return value
    if not 1 <= len(value) <= 128:
        raise errors.invalid_field("request_id", "must be 1-128 characters")
    return value


def _valid_time(value: timestamp_pb2.Timestamp) -> bool:
    """A Timestamp in google.protobuf's range (0001-01-01 to 9999-12-31, nanos 0-999,999,999)."""
    return -62_135_596_800 <= value.seconds <= 253_402_300_799 and 0 <= value.nanos < 10**9


def _texts(field: str, texts: list[str]) -> None:
    for index, text in enumerate(texts):
        if not text.strip():
            raise errors.invalid_field(field, "must not be empty")
        length = convert.weighted_length(text)
        if length > 280:
            raise errors.tweet_too_long(length, index)


class SocialServicer(rpc.SocialServiceServicer):
    """Thin: every method is validate, delegate, convert."""

    def __init__(self, social: Social) -> None:
        self._social = social
        self._admin = AdminGuard(social.settings.admin_token, social.settings.host)

    def admin_for_posting(self, record: AccountRecord, context: Context, what: str) -> None:
        """Posts by the operator account are admin calls (ADMIN_TOKEN_REQUIRED)."""
        if record.operator:
            self._admin.check(context, what)

    # helpers

    def _account(self, field: str, name: str, *, dash: bool = False) -> AccountRecord | None:
        """The account named; None for accounts/- when dash is allowed."""
        match = ACCOUNT.fullmatch(name)
        if match is None or (match[1] == "-" and not dash):
            raise errors.invalid_field(field, "must be accounts/{account}")
        if match[1] == "-":
            return None
        record = self._social.accounts.get(match[1])
        if record is None:
            raise errors.account_not_found(name)
        return record

    def _post(self, field: str, name: str, *, dash: bool = True) -> tuple[str, str]:
        """(account id or "-", network post id)."""
        match = POST.fullmatch(name)
        if match is None or (match[1] == "-" and not dash):
            raise errors.invalid_field(field, "must be accounts/{account}/posts/{post}")
        if match[1] != "-" and self._social.accounts.get(match[1]) is None:
            raise errors.account_not_found(f"accounts/{match[1]}")
        return match[1], match[2]

    def _agent(self, field: str, value: str) -> None:
        if value and not AGENT.fullmatch(value):
            raise errors.invalid_field(field, "must be agents/{agent}")

    def _check_credentials(self, record: AccountRecord) -> None:
        if record.network == X and self._social.accounts.credentials_of(record) is None:
            raise errors.credentials_missing(f"accounts/{record.account_id}")

    async def _item(self, name: str) -> OutboxItem:
        match = ITEM.fullmatch(name)
        if match is None:
            raise errors.invalid_field("name", "must be accounts/{account}/outbox/{item}")
        row = await self._social.outbox.get(match[2])
        if row is None or row.account != match[1]:
            raise errors.outbox_item_not_found(name)
        return row

    async def _enqueue(
        self,
        record: AccountRecord,
        request_id: str,
        action: Action,
        *,
        text: str = "",
        target: str = "",
        agent: str = "",
    ) -> s.OutboxItem:
        outbox = self._social.outbox
        if outbox.held(record.account_id):
            # X answered 401: nothing is sent for the account until VerifyAccount succeeds.
            raise errors.credentials_rejected(f"accounts/{record.account_id}")
        if record.review_required:
            row, new = await outbox.enqueue(
                record.account_id,
                request_id,
                action,
                text=text,
                target_post_id=target,
                review=True,
                agent=agent,
            )
        else:
            # One send attempt of a new item now when there is headroom; the worker does the rest.
            row, new = await outbox.submit(
                record.account_id, request_id, action, text=text, target_post_id=target, agent=agent
            )
        if not new and (row.action, row.text, row.target_post_id) != (action, text, target):
            raise errors.request_id_reused(request_id)
        return convert.item(row)

    async def _verify(self, record: AccountRecord) -> AccountRecord:
        name = f"accounts/{record.account_id}"
        social = self._social
        try:
            user_id, handle = await social.network.me(social.accounts.ref_of(record))
        except Unauthorized:
            raise errors.credentials_rejected(name) from None
        except Transient:
            raise errors.network_unavailable(name) from None
        return with_changes(
            record,
            user_id=user_id,
            handle=handle,
            verify_time=social.clock(),
            credentials_rejected=False,
        )

    # accounts

    async def CreateAccount(
        self, request: pb.CreateAccountRequest, context: Context
    ) -> pb.CreateAccountResponse:
        if request.HasField("credentials") or request.account.operator:
            self._admin.check(context, "CreateAccount")
        if not ACCOUNT_ID.fullmatch(request.account_id):
            raise errors.invalid_field("account_id", "must be 1-64 characters of [a-z0-9_-]")
        _request_id(request.request_id, required=False)
        given = request.account
        for index, agent in enumerate(given.agents):
            self._agent(f"account.agents[{index}]", agent)
        if len(given.display_name) > 50:
            raise errors.invalid_field("account.display_name", "must be at most 50 characters")
        if given.daily_post_cap < 0:
            raise errors.invalid_field("account.daily_post_cap", "must not be negative")
        name = f"accounts/{request.account_id}"
        social = self._social
        if social.accounts.get(request.account_id) is not None:
            raise errors.account_already_exists(name)
        record = AccountRecord(
            account_id=request.account_id,
            network=SANDBOX,
            display_name=given.display_name,
            agents=tuple(given.agents),
            review_required=given.review_required,
            daily_post_cap=given.daily_post_cap,
            operator=given.operator,
            create_time=social.clock(),
        )
        if given.network == s.NETWORK_SANDBOX:
            if request.HasField("credentials"):
                raise errors.invalid_field("credentials", "must be unset for a sandbox account")
            if not isinstance(social.network, SandboxNetwork):
                raise errors.invalid_field("account.network", "the service runs on X")
            try:
                ref = await social.network.create_account(
                    given.handle,
                    display_name=given.display_name,
                    operator=given.operator,
                    tier=social.settings.default_tier,
                )
            except HandleTaken:
                raise errors.account_already_exists(name) from None
            except ValueError:
                # Not str(err): it quotes the handle, and an error must stay small whatever came in.
                raise errors.invalid_field(
                    "account.handle", "must be 1-15 characters of [A-Za-z0-9_]"
                ) from None
            record = with_changes(
                record, handle=ref.handle, user_id=ref.user_id, verify_time=social.clock()
            )
        elif given.network == s.NETWORK_X:
            creds = request.credentials if request.HasField("credentials") else None
            if creds is not None:
                stored = StoredCredentials(
                    creds.api_key,
                    creds.api_key_secret,
                    creds.access_token,
                    creds.access_token_secret,
                )
                if not all((stored.api_key, stored.api_key_secret, stored.access_token)) or not (
                    stored.access_token_secret
                ):
                    raise errors.invalid_field("credentials", "must set all four fields")
                record = with_changes(record, credentials=stored)
            record = with_changes(record, network=X)
            self._check_credentials(record)
            record = await self._verify(record)
        else:
            raise errors.invalid_field("account.network", "must be NETWORK_X or NETWORK_SANDBOX")
        try:
            await social.accounts.create(record)
        except AccountExists:
            raise errors.account_already_exists(name) from None
        social.poller.add_account(record.account_id)
        return pb.CreateAccountResponse(account=convert.account(record))

    async def GetAccount(
        self, request: pb.GetAccountRequest, context: Context
    ) -> pb.GetAccountResponse:
        record = self._account("name", request.name)
        assert record is not None
        return pb.GetAccountResponse(account=convert.account(record))

    async def ListAccounts(
        self, request: pb.ListAccountsRequest, context: Context
    ) -> pb.ListAccountsResponse:
        size = _page_size(request.page_size)
        self._agent("agent", request.agent)
        query = f"accounts|{request.network}|{request.agent}"
        after = _cursor(query, request.page_token) or ""
        wanted = {s.NETWORK_SANDBOX: SANDBOX, s.NETWORK_X: X}.get(request.network)
        rows = [
            r
            for r in self._social.accounts.all()
            if r.account_id > after
            and (wanted is None or r.network == wanted)
            and (not request.agent or request.agent in r.agents)
        ]
        page = rows[:size]
        token = paging.encode(query, page[-1].account_id) if len(rows) > size else ""
        return pb.ListAccountsResponse(
            accounts=[convert.account(r) for r in page], next_page_token=token
        )

    async def UpdateAccount(
        self, request: pb.UpdateAccountRequest, context: Context
    ) -> pb.UpdateAccountResponse:
        if request.HasField("credentials"):
            self._admin.check(context, "UpdateAccount")
        record = self._account("account.name", request.account.name)
        assert record is not None
        _request_id(request.request_id, required=False)
        paths = list(request.update_mask.paths) or list(MASK_FIELDS)
        given = request.account
        changes: dict[str, Any] = {}
        for path in paths:
            if path not in MASK_FIELDS:
                raise errors.invalid_field("update_mask", f"cannot update {path[:64]!r}")
            if path == "display_name":
                if len(given.display_name) > 50:
                    raise errors.invalid_field(
                        "account.display_name", "must be at most 50 characters"
                    )
                changes["display_name"] = given.display_name
            elif path == "agents":
                for index, agent in enumerate(given.agents):
                    self._agent(f"account.agents[{index}]", agent)
                changes["agents"] = tuple(given.agents)
            elif path == "review_required":
                changes["review_required"] = given.review_required
            else:
                if given.daily_post_cap < 0:
                    raise errors.invalid_field("account.daily_post_cap", "must not be negative")
                changes["daily_post_cap"] = given.daily_post_cap
        updated = with_changes(record, **changes)
        if request.HasField("credentials"):
            if record.network == SANDBOX:
                raise errors.invalid_field("credentials", "must be unset for a sandbox account")
            c = request.credentials
            updated = await self._verify(
                with_changes(
                    updated,
                    credentials=StoredCredentials(
                        c.api_key, c.api_key_secret, c.access_token, c.access_token_secret
                    ),
                )
            )
        await self._social.accounts.save(updated)
        if request.HasField("credentials"):
            await self._resume(updated)
        return pb.UpdateAccountResponse(account=convert.account(updated))

    async def VerifyAccount(
        self, request: pb.VerifyAccountRequest, context: Context
    ) -> pb.VerifyAccountResponse:
        record = self._account("name", request.name)
        assert record is not None
        _request_id(request.request_id, required=False)
        self._check_credentials(record)
        try:
            updated = await self._verify(record)
        except RateLimited as error:
            retry_at = reset_of(error.rate, self._social.clock())
            raise errors.read_rate_limited(request.name, retry_at) from None
        await self._social.accounts.save(updated)
        await self._resume(updated)
        return pb.VerifyAccountResponse(account=convert.account(updated))

    async def _resume(self, record: AccountRecord) -> None:
        """Verified credentials lift a hold left by a 401: sending and polling start again."""
        social = self._social
        await social.outbox.release(record.account_id)
        social.poller.add_account(record.account_id)

    # writes

    async def CreatePost(
        self, request: pb.CreatePostRequest, context: Context
    ) -> pb.CreatePostResponse:
        record = self._account("parent", request.parent)
        assert record is not None
        _texts("text", [request.text])
        self._agent("agent", request.agent)
        request_id = _request_id(request.request_id, required=True)
        if request.in_reply_to and request.quoted_post:
            raise errors.invalid_field("quoted_post", "at most one of in_reply_to and quoted_post")
        action, target = Action.POST, ""
        if request.in_reply_to:
            action, target = Action.REPLY, self._post("in_reply_to", request.in_reply_to)[1]
        elif request.quoted_post:
            action, target = Action.QUOTE, self._post("quoted_post", request.quoted_post)[1]
        self._check_credentials(record)
        self.admin_for_posting(record, context, "CreatePost")
        item = await self._enqueue(
            record, request_id, action, text=request.text, target=target, agent=request.agent
        )
        return pb.CreatePostResponse(item=item)

    async def CreateThread(
        self, request: pb.CreateThreadRequest, context: Context
    ) -> pb.CreateThreadResponse:
        record = self._account("parent", request.parent)
        assert record is not None
        texts = list(request.texts)
        if not 2 <= len(texts) <= 25:
            raise errors.invalid_field("texts", "must have 2-25 parts")
        _texts("texts", texts)
        self._agent("agent", request.agent)
        request_id = _request_id(request.request_id, required=True)
        target = ""
        if request.in_reply_to:
            target = self._post("in_reply_to", request.in_reply_to)[1]
        self._check_credentials(record)
        self.admin_for_posting(record, context, "CreateThread")
        text = thread_text(texts)
        item = await self._enqueue(
            record, request_id, Action.THREAD, text=text, target=target, agent=request.agent
        )
        return pb.CreateThreadResponse(item=item)

    async def DeletePost(
        self, request: pb.DeletePostRequest, context: Context
    ) -> pb.DeletePostResponse:
        account_id, post_id = self._post("name", request.name, dash=False)
        request_id = _request_id(request.request_id, required=True)
        record = self._social.accounts.get(account_id)
        assert record is not None
        await self._check_author(record, request.name, post_id)
        item = await self._enqueue(record, request_id, Action.DELETE, target=post_id)
        return pb.DeletePostResponse(item=item)

    async def _check_author(self, record: AccountRecord, name: str, post_id: str) -> None:
        """NOT_OWN_POST when the post exists and another account wrote it.

        A post that is gone (deleting a deleted post succeeds) or cannot be read now is left to
        the outbox.
        """
        if not record.user_id:
            return
        social = self._social
        try:
            result = await social.network.get_post(social.accounts.ref_of(record), post_id)
        except NetworkError:
            return
        if result.post is not None and result.post.author_id != record.user_id:
            raise errors.not_own_post(name, result.post.author_handle)

    async def _react(
        self, account: str, post: str, agent: str, request_id: str, action: Action
    ) -> s.OutboxItem:
        record = self._account("account", account)
        assert record is not None
        post_id = self._post("post", post)[1]
        self._agent("agent", agent)
        key = _request_id(request_id, required=True)
        self._check_credentials(record)
        return await self._enqueue(record, key, action, target=post_id, agent=agent)

    async def LikePost(self, request: pb.LikePostRequest, context: Context) -> pb.LikePostResponse:
        item = await self._react(
            request.account, request.post, request.agent, request.request_id, Action.LIKE
        )
        return pb.LikePostResponse(item=item)

    async def RepostPost(
        self, request: pb.RepostPostRequest, context: Context
    ) -> pb.RepostPostResponse:
        item = await self._react(
            request.account, request.post, request.agent, request.request_id, Action.REPOST
        )
        return pb.RepostPostResponse(item=item)

    # reads

    def _reader(self, account_id: str, name: str) -> str:
        """The account a read runs through (accounts/- picks the first one)."""
        if account_id != "-":
            return account_id
        every = self._social.accounts.all()
        if not every:
            raise errors.post_not_found(name)
        return every[0].account_id

    async def _read(self, coro: Any, name: str) -> Any:
        try:
            return await coro
        except PostNotFound:
            raise errors.post_not_found(name) from None
        except RateLimited as error:
            retry_at = reset_of(error.rate, self._social.clock())
            raise errors.read_rate_limited(name, retry_at) from None
        except (Transient, NetworkError):
            raise errors.network_unavailable(name) from None

    async def GetPost(self, request: pb.GetPostRequest, context: Context) -> pb.GetPostResponse:
        account_id, post_id = self._post("name", request.name)
        through = self._reader(account_id, request.name)
        social = self._social
        result = await self._read(
            social.network.get_post(social.accounts.ref(through), post_id), request.name
        )
        if result.post is None:
            raise errors.post_not_found(request.name)
        return pb.GetPostResponse(post=convert.post(result.post, through, social.accounts))

    async def GetConversation(
        self, request: pb.GetConversationRequest, context: Context
    ) -> pb.GetConversationResponse:
        account_id, post_id = self._post("post", request.post)
        if not 0 <= request.max_depth <= 20:
            raise errors.invalid_field("max_depth", "must be 0-20")
        depth = request.max_depth or 5
        through = self._reader(account_id, request.post)
        social = self._social
        posts = await self._read(
            social.network.conversation(social.accounts.ref(through), post_id, limit=depth + 1),
            request.post,
        )
        if not posts:
            raise errors.post_not_found(request.post)
        *before, last = posts
        ancestors = before[-depth:] if depth else []
        complete = bool(posts) and ((ancestors[0] if ancestors else last).in_reply_to_id is None)
        return pb.GetConversationResponse(
            post=convert.post(last, through, social.accounts),
            ancestors=[convert.post(p, through, social.accounts) for p in ancestors],
            complete=complete,
        )

    async def ListPosts(
        self, request: pb.ListPostsRequest, context: Context
    ) -> pb.ListPostsResponse:
        record = self._account("parent", request.parent, dash=True)
        size = _page_size(request.page_size)
        if request.HasField("start_time") and not _valid_time(request.start_time):
            raise errors.invalid_field("start_time", "must be a valid timestamp")
        query = f"posts|{request.parent}|{request.start_time.ToNanoseconds()}"
        after = _cursor(query, request.page_token)
        network = self._social.network
        if isinstance(network, XApiNetwork):
            if record is None:
                raise errors.invalid_field("parent", "accounts/- lists the sandbox network only")
            return await self._list_x_posts(request, record, network, query, after)
        if not isinstance(network, SandboxNetwork):
            raise errors.unsupported("ListPosts on this network")
        if record is None:
            rows = await network.timeline(after_id=after, limit=size + 1)
            through = "-"
        else:
            rows = await network.posts_of(record.handle, after_id=after, limit=size + 1)
            through = record.account_id
        if request.HasField("start_time"):
            start = request.start_time.ToDatetime().timestamp()
            rows = [r for r in rows if r.created_at.timestamp() >= start]
        page = rows[:size]
        token = paging.encode(query, page[-1].id) if len(rows) > size else ""
        accounts = self._social.accounts
        posts = []
        for row in page:
            author = accounts.by_user_id(row.author_id)
            who = author.account_id if through == "-" and author is not None else through
            posts.append(convert.post(row, who, accounts))
        return pb.ListPostsResponse(posts=posts, next_page_token=token)

    async def _list_x_posts(
        self,
        request: pb.ListPostsRequest,
        record: AccountRecord,
        network: XApiNetwork,
        query: str,
        cursor: Any,
    ) -> pb.ListPostsResponse:
        """One page of the account's own posts from GET /2/users/:id/tweets (X pages by 100)."""
        size = min(_page_size(request.page_size), X_PAGE_MAX)
        start = (
            request.start_time.ToDatetime().timestamp() if request.HasField("start_time") else None
        )
        social = self._social
        rows, next_token = await self._read(
            network.user_posts(
                social.accounts.ref_of(record),
                start_time=start,
                page_token=str(cursor or ""),
                limit=size,
            ),
            request.parent,
        )
        if start is not None:
            rows = [r for r in rows if r.created_at.timestamp() >= start]
        token = paging.encode(query, next_token) if next_token else ""
        posts = [convert.post(r, record.account_id, social.accounts) for r in rows]
        return pb.ListPostsResponse(posts=posts, next_page_token=token)

    async def ListMentions(
        self, request: pb.ListMentionsRequest, context: Context
    ) -> pb.ListMentionsResponse:
        record = self._account("parent", request.parent, dash=True)
        size = _page_size(request.page_size)
        query = f"mentions|{request.parent}|{request.since_post_id}"
        before = _cursor(query, request.page_token) or ""
        rows = await self._social.poller.recent(
            None if record is None else record.account_id,
            after_id=request.since_post_id,
            before_id=before,
            limit=size + 1,
        )
        page = list(rows[:size])
        token = paging.encode(query, page[-1].post.id) if len(rows) > size else ""
        accounts = self._social.accounts
        return pb.ListMentionsResponse(
            mentions=[convert.mention(m, accounts) for m in page], next_page_token=token
        )

    async def StreamMentions(
        self, request: pb.StreamMentionsRequest, context: Context
    ) -> AsyncIterator[pb.StreamMentionsResponse]:
        record = self._account("parent", request.parent, dash=True)
        accounts = self._social.accounts
        stream = self._social.poller.subscribe(
            None if record is None else record.account_id, request.after_post_id or None
        )
        try:
            async for mention in stream:
                yield pb.StreamMentionsResponse(mention=convert.mention(mention, accounts))
        except MentionsLagged:
            raise errors.mentions_lagged(request.parent) from None
        finally:
            await stream.aclose()

    # outbox

    async def GetOutboxItem(
        self, request: pb.GetOutboxItemRequest, context: Context
    ) -> pb.GetOutboxItemResponse:
        return pb.GetOutboxItemResponse(item=convert.item(await self._item(request.name)))

    async def ListOutboxItems(
        self, request: pb.ListOutboxItemsRequest, context: Context
    ) -> pb.ListOutboxItemsResponse:
        record = self._account("parent", request.parent, dash=True)
        size = _page_size(request.page_size)
        self._agent("agent", request.agent)
        query = f"outbox|{request.parent}|{request.state}|{request.agent}"
        after = _cursor(query, request.page_token) or ""
        if request.state not in convert.PROTO_STATES and request.state:
            raise errors.invalid_field("state", "must be an OutboxState")
        states = [convert.PROTO_STATES[request.state]] if request.state else []
        rows = await self._social.outbox.items(
            account=None if record is None else record.account_id,
            states=states,
            after_id=after,
            limit=size + 1,
            agent=request.agent or None,
        )
        page = list(rows[:size])
        token = paging.encode(query, page[-1].id) if len(rows) > size else ""
        return pb.ListOutboxItemsResponse(
            items=[convert.item(r) for r in page], next_page_token=token
        )

    async def ApproveOutboxItem(
        self, request: pb.ApproveOutboxItemRequest, context: Context
    ) -> pb.ApproveOutboxItemResponse:
        self._admin.check(context, "ApproveOutboxItem")
        row = await self._review(request.name, request.note, request.request_id, approve=True)
        return pb.ApproveOutboxItemResponse(item=convert.item(row))

    async def RejectOutboxItem(
        self, request: pb.RejectOutboxItemRequest, context: Context
    ) -> pb.RejectOutboxItemResponse:
        self._admin.check(context, "RejectOutboxItem")
        row = await self._review(request.name, request.note, request.request_id, approve=False)
        return pb.RejectOutboxItemResponse(item=convert.item(row))

    async def _review(self, name: str, note: str, request_id: str, *, approve: bool) -> OutboxItem:
        if len(note) > 500:
            raise errors.invalid_field("note", "must be at most 500 characters")
        _request_id(request_id, required=False)
        row = await self._item(name)
        done = (
            {State.APPROVED, State.SENDING, State.SENT, State.FAILED}
            if approve
            else {State.REJECTED}
        )
        if row.state in done:
            return row
        if row.state is not State.NEEDS_REVIEW:
            raise errors.not_reviewable(name, row.state.value)
        outbox = self._social.outbox
        moved = await outbox.approve(row.id) if approve else await outbox.reject(row.id, note)
        if moved is None:
            latest = await self._item(name)
            if latest.state in done:
                return latest
            raise errors.not_reviewable(name, latest.state.value)
        return moved

    async def GetRateLimits(
        self, request: pb.GetRateLimitsRequest, context: Context
    ) -> pb.GetRateLimitsResponse:
        record = self._account("account", request.account)
        assert record is not None
        social = self._social
        now = social.clock()
        limits = []
        next_post = now
        for endpoint in sorted(set(ENDPOINTS.values())):
            window = await social.store.get_window(record.account_id, endpoint)
            if window is None:
                continue
            limit = s.RateLimit(
                endpoint=endpoint,
                limit=window.limit or 0,
                remaining=window.remaining or 0,
                observe_time=convert.timestamp(window.updated_at),
            )
            if window.reset_at is not None:
                limit.reset_time.CopyFrom(convert.timestamp(window.reset_at))
            limits.append(limit)
            if endpoint == POSTS and window.remaining == 0 and window.reset_at:
                next_post = max(next_post, window.reset_at)
        used = await social.store.count_sent(record.account_id, POSTING, now - DAY_S)
        tier_cap = DEFAULT_POLICIES[social.settings.default_tier].posts_per_24h
        cap = record.daily_post_cap or tier_cap or 0
        if cap and used >= cap:
            next_post = max(next_post, now + DAY_S / cap)
        queued = await social.outbox.items(
            account=record.account_id, states=[State.QUEUED, State.APPROVED], limit=500
        )
        return pb.GetRateLimitsResponse(
            rate_limits=limits,
            daily_posts_used=used,
            daily_post_cap=cap,
            next_post_time=convert.timestamp(next_post),
            queued_items=sum(1 for r in queued if r.next_attempt_at > now),
        )
