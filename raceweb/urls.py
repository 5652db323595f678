from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "RaceWeb organizers"
admin.site.site_title = "RaceWeb admin"
admin.site.index_title = "Races and start lists"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("races.urls")),
]
