"""The demo's one table: what the database-backed views read."""

from django.db import models


class Message(models.Model):
    room = models.CharField(max_length=64)
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created"]

    def __str__(self):
        return f"{self.room}: {self.text[:40]}"
