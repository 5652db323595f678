from django.urls import path

from races import views

urlpatterns = [
    path("", views.race_list, name="race-list"),
    path("races/<slug:slug>/", views.race_detail, name="race-detail"),
]
