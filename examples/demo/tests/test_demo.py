"""Quick tests of the demo project: python manage.py test tests

They need no database and no collected static files.
"""

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import SimpleTestCase, override_settings

from demo import views
from demo.routing import websocket_urlpatterns


@override_settings(SECURE_SSL_REDIRECT=False)
class HealthzTests(SimpleTestCase):
    def test_healthz_reports_identity(self):
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        data = response.json()
        self.assertEqual(data["status"], "ok")
        self.assertIn("pid", data)
        self.assertIsNone(data["worker"])
        self.assertEqual(data["release"], views.RELEASE)

    def test_healthz_refuses_post(self):
        self.assertEqual(self.client.post("/healthz").status_code, 405)


@override_settings(SECURE_SSL_REDIRECT=False)
class LoadViewTests(SimpleTestCase):
    def test_cpu_burns_about_the_asked_time(self):
        response = self.client.get("/cpu", {"ms": "20"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["ms"], 20)
        self.assertGreater(response.json()["rounds"], 0)

    def test_slow_sleeps(self):
        response = self.client.get("/slow", {"ms": "5"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["ms"], 5)

    def test_bounds_are_enforced(self):
        for path in ("/cpu", "/slow"):
            for value in ("-1", str(views.MAX_MS + 1), "abc"):
                with self.subTest(path=path, ms=value):
                    self.assertEqual(self.client.get(path, {"ms": value}).status_code, 400)


class EchoConsumerTests(SimpleTestCase):
    async def test_echo_round_trip(self):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/echo/")
        connected, _ = await communicator.connect()
        self.assertTrue(connected)
        await communicator.send_to(text_data="ping")
        self.assertEqual(await communicator.receive_from(), "ping")
        await communicator.send_to(bytes_data=b"\x00\x01")
        self.assertEqual((await communicator.receive_output())["bytes"], b"\x00\x01")
        await communicator.disconnect()
