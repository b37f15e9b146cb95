"""SocialService client: accounts, the outbox, reads and the mention stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from puppet.social.v1 import social_pb2, social_service_pb2

from puppet_agent import errors
from puppet_agent.clients.base import TRANSIENT, calling, handle_for

if TYPE_CHECKING:
    from puppet.social.v1.social_service_pb2_grpc import SocialServiceAsyncStub


@dataclass
class SocialClient:
    """SocialService: the persona's account, the outbox, reads and the mention stream."""

    stub: SocialServiceAsyncStub
    network: int = social_pb2.NETWORK_SANDBOX

    async def ensure_account(
        self, agent_id: str, display_name: str, credentials: social_pb2.XCredentials | None
    ) -> social_pb2.Account:
        """The persona's account (id = persona id), registered on first use."""
        name = f"accounts/{agent_id}"
        with calling("social", agent_id):
            try:
                return (
                    await self.stub.GetAccount(social_service_pb2.GetAccountRequest(name=name))
                ).account
            except grpc.aio.AioRpcError as err:
                if err.code() is not grpc.StatusCode.NOT_FOUND:
                    raise
            account = social_pb2.Account(
                network=self.network,  # type: ignore[arg-type]
                display_name=display_name[:50],
                agents=[f"agents/{agent_id}"],
            )
            if self.network == social_pb2.NETWORK_SANDBOX:
                account.handle = handle_for(agent_id)
                credentials = None
            request = social_service_pb2.CreateAccountRequest(
                account=account, account_id=agent_id, credentials=credentials
            )
            try:
                return (await self.stub.CreateAccount(request)).account
            except grpc.aio.AioRpcError as err:
                if err.code() is not grpc.StatusCode.ALREADY_EXISTS:
                    raise
                got = await self.stub.GetAccount(social_service_pb2.GetAccountRequest(name=name))
                return got.account

    async def post(
        self,
        agent_id: str,
        text: str,
        request_id: str,
        *,
        in_reply_to: str = "",
        quoted_post: str = "",
    ) -> social_pb2.OutboxItem:
        request = social_service_pb2.CreatePostRequest(
            parent=f"accounts/{agent_id}",
            text=text,
            in_reply_to=in_reply_to,
            quoted_post=quoted_post,
            agent=f"agents/{agent_id}",
            request_id=request_id,
        )
        with calling("social", agent_id):
            return (await self.stub.CreatePost(request)).item

    async def thread(
        self, agent_id: str, texts: Sequence[str], request_id: str
    ) -> social_pb2.OutboxItem:
        request = social_service_pb2.CreateThreadRequest(
            parent=f"accounts/{agent_id}",
            texts=list(texts),
            agent=f"agents/{agent_id}",
            request_id=request_id,
        )
        with calling("social", agent_id):
            return (await self.stub.CreateThread(request)).item

    async def like(self, agent_id: str, post: str, request_id: str) -> social_pb2.OutboxItem:
        request = social_service_pb2.LikePostRequest(
            account=f"accounts/{agent_id}",
            post=post,
            agent=f"agents/{agent_id}",
            request_id=request_id,
        )
        with calling("social", agent_id):
            return (await self.stub.LikePost(request)).item

    async def get_post(self, agent_id: str, post: str) -> social_pb2.Post | None:
        """The post read through the persona's account; None when it cannot be read."""
        try:
            got = await self.stub.GetPost(social_service_pb2.GetPostRequest(name=post))
        except grpc.aio.AioRpcError as err:
            if err.code() in TRANSIENT:
                raise errors.unavailable("social") from err
            return None
        return got.post

    async def conversation(self, post: str) -> list[social_pb2.Post]:
        """Ancestors of the post, oldest first; empty when they cannot be read."""
        try:
            got = await self.stub.GetConversation(
                social_service_pb2.GetConversationRequest(post=post, max_depth=5)
            )
        except grpc.aio.AioRpcError:
            return []
        return list(got.ancestors)

    async def recent_posts(self, account_id: str, limit: int = 5) -> list[social_pb2.Post]:
        """An account's newest posts; empty when they cannot be read."""
        try:
            got = await self.stub.ListPosts(
                social_service_pb2.ListPostsRequest(
                    parent=f"accounts/{account_id}", page_size=limit
                )
            )
        except grpc.aio.AioRpcError:
            return []
        return list(got.posts)

    async def outbox_item(self, name: str) -> social_pb2.OutboxItem | None:
        try:
            got = await self.stub.GetOutboxItem(social_service_pb2.GetOutboxItemRequest(name=name))
        except grpc.aio.AioRpcError:
            return None
        return got.item

    async def mentions(
        self, agent_id: str, after_post_id: str
    ) -> AsyncIterator[social_pb2.Mention]:
        """Mentions of the persona's account, resuming after its cursor, until cancelled."""
        call = self.stub.StreamMentions(
            social_service_pb2.StreamMentionsRequest(
                parent=f"accounts/{agent_id}", after_post_id=after_post_id
            ),
            timeout=None,
        )
        async for response in call:
            yield response.mention
