from django.urls import path, re_path

from demo.consumers import EchoConsumer, RoomConsumer

websocket_urlpatterns = [
    path("ws/echo/", EchoConsumer.as_asgi()),
    # A room name is what a channel layer group name may hold (and short).
    re_path(r"^ws/room/(?P<name>[A-Za-z0-9_-]{1,64})/$", RoomConsumer.as_asgi()),
]
