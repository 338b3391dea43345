from django.http import HttpResponse
from django.urls import path

# Changed by the tests to make a second release.
GREETING = "plain release one"


def index(request):
    return HttpResponse(f"{GREETING}\n", content_type="text/plain")


urlpatterns = [path("", index)]
