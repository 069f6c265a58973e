"""Sends the agent's picture over one tunnel session: a new generation at every session (a full
snapshot, then changes), in rounds of at most ``ROUND_MAX_MESSAGES`` picture messages that each
end with a mark. At most ``ROUNDS_IN_FLIGHT`` rounds wait for the server's acknowledgement, so a
server that reads slowly never makes the agent queue without bound: changes wait in the picture's
dirty set instead, where they coalesce. The server asks for a new generation when a round
arrived incomplete."""

from __future__ import annotations

import asyncio

from cluster_agent.picture import AgentPicture
from rancher_tunnel.errors import SessionClosed
from rancher_tunnel.logs import get_logger
from rancher_tunnel.messages import (
    Message,
    PictureAck,
    PictureBegin,
    PictureMark,
    PictureResync,
)
from rancher_tunnel.session import Session

ROUND_MAX_MESSAGES = 256  # with ROUNDS_IN_FLIGHT, well under the server's pending messages
ROUNDS_IN_FLIGHT = 2

log = get_logger(component="picture-sender")


class PictureSender:
    """One per session; :meth:`on_message` gets the server's acknowledgements."""

    def __init__(self, picture: AgentPicture, session: Session, agent_version: str) -> None:
        self._picture = picture
        self._session = session
        self._agent_version = agent_version
        self._acked = -1
        self._seq = -1
        self._resync = True
        self._synced = False
        self._wake = asyncio.Event()
        self.rounds_sent = 0

    async def on_message(self, msg: Message) -> None:
        if isinstance(msg, PictureAck) and msg.generation == self._picture.generation:
            self._acked = max(self._acked, msg.seq)
            self._wake.set()
        elif isinstance(msg, PictureResync):
            log.info("the server asked for a new picture generation", reason=msg.reason)
            self._resync = True
            self._wake.set()

    async def _wait(self) -> None:
        """Until there is something to send and room for another round."""
        while True:
            if self._resync or (
                self._picture.dirty and self._seq - self._acked < ROUNDS_IN_FLIGHT
            ):
                return
            self._wake.clear()
            changed = asyncio.ensure_future(self._picture.changed.wait())
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({changed, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                woken.cancel()

    async def run(self) -> None:
        """Until the session ends."""
        try:
            await self._session.wait_ready()
            while not self._session.closed:
                await self._wait()
                if self._resync:
                    self._resync, self._synced = False, False
                    self._seq = self._acked = -1
                    generation = self._picture.start_generation()
                    await self._session.send_message(
                        PictureBegin(generation, agent_version=self._agent_version))
                msgs = self._picture.take(ROUND_MAX_MESSAGES)
                for msg in msgs:
                    await self._session.send_message(msg)
                synced_now = not self._synced and not self._picture.dirty
                self._synced = self._synced or synced_now
                self._seq += 1
                await self._session.send_message(PictureMark(
                    self._picture.generation, self._seq, len(msgs), synced_now,
                    coalesced=self._picture.coalesced))
                self.rounds_sent += 1
        except SessionClosed:
            return
