"""Quick tests of the demo project: DJANGO_DEBUG=true python manage.py test tests

They need no collected static files; without DATABASE_URL and REDIS_URL
Django's test database is sqlite and the channel layer in memory.
"""

import json
from unittest import mock

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase, TestCase, override_settings

from demo import views
from demo.models import Message
from demo.settings import database_from_url
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

    def test_hold_keeps_the_memory_for_the_process(self):
        views._HELD.clear()
        self.addCleanup(views._HELD.clear)
        first = self.client.get("/hold", {"kb": "64"})
        self.assertEqual(first.status_code, 200)
        self.assertEqual(self.client.get("/hold", {"kb": "64"}).json()["held_kb"], 128)
        self.assertEqual(sum(len(b) for b in views._HELD), 128 * 1024)
        for value in ("-1", str(views.MAX_HOLD_KB + 1), "abc"):
            with self.subTest(kb=value):
                self.assertEqual(self.client.get("/hold", {"kb": value}).status_code, 400)
        with mock.patch.object(views, "MAX_HELD_KB", 128):
            self.assertEqual(self.client.get("/hold", {"kb": "1"}).status_code, 507)

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


class RoomConsumerTests(SimpleTestCase):
    async def test_every_member_gets_every_message(self):
        app = URLRouter(websocket_urlpatterns)
        first = WebsocketCommunicator(app, "/ws/room/lobby/")
        second = WebsocketCommunicator(app, "/ws/room/lobby/")
        elsewhere = WebsocketCommunicator(app, "/ws/room/other/")
        for member in (first, second, elsewhere):
            self.assertTrue((await member.connect())[0])
        await first.send_to(text_data="hi")
        for member in (first, second):
            got = json.loads(await member.receive_from())
            self.assertEqual((got["room"], got["text"]), ("lobby", "hi"))
            self.assertIsInstance(got["pid"], int)
            self.assertIsInstance(got["member_pid"], int)
        self.assertTrue(await elsewhere.receive_nothing())
        for member in (first, second, elsewhere):
            await member.disconnect()

    async def test_a_bad_room_name_is_not_routed(self):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/room/a b/")
        with self.assertRaises(ValueError):
            await communicator.connect()


@override_settings(SECURE_SSL_REDIRECT=False)
class DatabaseViewTests(TestCase):
    def test_db_counts_the_rows(self):
        Message.objects.create(room="lobby", text="hello")
        data = self.client.get("/db").json()
        self.assertEqual(data["rows"], 1)
        self.assertIn(data["vendor"], ("sqlite", "postgresql"))
        self.assertEqual(data["release"], views.RELEASE)


class DatabaseUrlTests(SimpleTestCase):
    def test_postgres_url_with_quoted_parts(self):
        db = database_from_url("postgres://demo:p%40ss%2Fw@10.0.0.5:5433/demo_db", 60)
        self.assertEqual(db["ENGINE"], "django.db.backends.postgresql")
        self.assertEqual((db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]),
                         ("demo", "p@ss/w", "10.0.0.5", "5433", "demo_db"))
        self.assertTrue(db["CONN_HEALTH_CHECKS"])

    def test_ipv6_host_and_sqlite(self):
        self.assertEqual(database_from_url("postgresql://u:p@[::1]:5432/d", 0)["HOST"], "::1")
        self.assertEqual(database_from_url("sqlite:////tmp/x.sqlite3", 0)["NAME"], "/tmp/x.sqlite3")

    def test_bad_urls_are_refused(self):
        for url in ("mysql://u:p@h/d", "postgres://u:p@h:5432/", "postgres://u:p@h:99999/d"):
            with self.subTest(url=url), self.assertRaises(ImproperlyConfigured):
                database_from_url(url, 0)
