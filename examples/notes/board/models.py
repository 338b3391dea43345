from django.db import models


class Upload(models.Model):
    """One file sent to /files/; the file itself lives in MEDIA_ROOT."""

    name = models.CharField(max_length=255)
    size = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
