"""Spectator pages."""

from django.shortcuts import get_object_or_404, render

from races.models import Race


def race_list(request):
    races = Race.objects.select_related("course").order_by("status", "name")
    return render(request, "races/race_list.html", {"races": races})


def race_detail(request, slug: str):
    race = get_object_or_404(Race.objects.select_related("course"), slug=slug)
    return render(request, "races/race_detail.html", {"race": race})
