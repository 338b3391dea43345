from django.urls import path

from demo import views

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("cpu", views.cpu, name="cpu"),
    path("slow", views.slow, name="slow"),
    path("hold", views.hold, name="hold"),
    path("db", views.db, name="db"),
]
