from django.urls import path

from board.consumers import RoomConsumer

websocket_urlpatterns = [
    path("live/<slug:room>/", RoomConsumer.as_asgi()),
]
