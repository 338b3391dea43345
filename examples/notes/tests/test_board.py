"""Quick tests of the notes project:

    NOTES_SECRET_KEY=x NOTES_ALLOWED_HOSTS=testserver python manage.py test tests
"""

import json
import tempfile

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase, override_settings

from board.routing import websocket_urlpatterns


class FilesTests(TestCase):
    def setUp(self):
        media = tempfile.mkdtemp(prefix="notes-media-")
        self.override = override_settings(MEDIA_ROOT=media)
        self.override.enable()

    def tearDown(self):
        self.override.disable()

    def test_upload_is_listed(self):
        sent = self.client.post("/files/", {"file": SimpleUploadedFile("hello.txt", b"hello")})
        self.assertEqual(sent.status_code, 201)
        self.assertEqual(sent.json()["url"], "/uploads/hello.txt")
        names = [f["name"] for f in self.client.get("/files/").json()["files"]]
        self.assertEqual(names, ["hello.txt"])

    def test_upload_without_file_is_refused(self):
        self.assertEqual(self.client.post("/files/").status_code, 400)


class RoomTests(TestCase):
    async def test_a_message_reaches_everyone_in_the_room(self):
        app = URLRouter(websocket_urlpatterns)
        first = WebsocketCommunicator(app, "/live/lobby/")
        second = WebsocketCommunicator(app, "/live/lobby/")
        self.assertTrue((await first.connect())[0])
        self.assertTrue((await second.connect())[0])
        await first.send_to(text_data="hi")
        for member in (first, second):
            self.assertEqual(json.loads(await member.receive_from()), {"room": "lobby", "message": "hi"})
        await first.disconnect()
        await second.disconnect()
