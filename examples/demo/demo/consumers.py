"""Websocket consumers served by daphne."""

import json
import os

from channels.generic.websocket import AsyncWebsocketConsumer


class EchoConsumer(AsyncWebsocketConsumer):
    """Sends every message back to its sender, text as text, bytes as bytes."""

    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)


class RoomConsumer(AsyncWebsocketConsumer):
    """A group chat: /ws/room/<name>/.

    Every text message goes to the room's group on the channel layer and
    reaches every member, the sender too, as JSON {"room", "text", "pid"}:
    pid is the daphne process that took the message from its sender, and
    member_pid the one that delivers it to this member. With a layer shared
    by every process (Redis) members connected through different processes
    or hosts all receive it; the in-memory layer reaches only one process.
    """

    async def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["name"]
        self.group = f"room.{self.room}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            return
        await self.channel_layer.group_send(
            self.group, {"type": "room.message", "text": text_data, "pid": os.getpid()})

    async def room_message(self, event):
        await self.send(text_data=json.dumps(
            {"room": self.room, "text": event["text"], "pid": event["pid"], "member_pid": os.getpid()}))
