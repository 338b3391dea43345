"""The notes board: a page, and a file drop at /files/.

GET  /files/  the files in MEDIA_ROOT, as JSON {"files": [{"name", "url", "size"}]}
POST /files/  multipart field "file": stored in MEDIA_ROOT, answered 201 with
              its name and URL (CSRF-exempt: it is the machine interface the
              tests and scripts use; the page has no form)
"""

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from board.models import Upload


def _release():
    marker = settings.BASE_DIR / "RELEASE"
    try:
        return marker.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _listing():
    try:
        _dirs, names = default_storage.listdir("")
    except FileNotFoundError:
        names = []
    return [{"name": n, "url": default_storage.url(n), "size": default_storage.size(n)} for n in sorted(names)]


def index(request):
    return render(request, "board/index.html", {"files": _listing(), "release": _release()})


@csrf_exempt
def files(request):
    if request.method == "GET":
        return JsonResponse({"files": _listing(), "release": _release()})
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "send the file in the multipart field 'file'"}, status=400)
    name = default_storage.save(upload.name, upload)
    Upload.objects.create(name=name, size=upload.size)
    return JsonResponse({"name": name, "url": default_storage.url(name), "size": upload.size}, status=201)
