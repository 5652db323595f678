"""Template tags of the spectator pages."""

import json

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from races.organizer.sparkline import profile_coordinates

register = template.Library()

MODULE_DIR = "js"


def _module_names() -> tuple[str, ...]:
    directory = settings.BASE_DIR / "static" / MODULE_DIR
    return tuple(sorted(path.name for path in directory.glob("*.js")))


@register.simple_tag
def module_importmap() -> str:
    """An import map from `raceweb/<module>.js` to each module's static URL.

    The modules import each other by these bare names, so that with hashed static files
    (STATIC_MANIFEST) every import still resolves to the current version of the file.
    """
    imports = {f"raceweb/{name}": static(f"{MODULE_DIR}/{name}") for name in _module_names()}
    # json.dumps does not escape "</", which would end the script element early.
    text = json.dumps({"imports": imports}, indent=1).replace("</", "<\\/")
    return format_html('<script type="importmap">{}</script>', mark_safe(text))


@register.filter
def km(metres: float | None) -> str:
    """Metres as kilometres with one decimal: 14110.0 -> "14.1"."""
    return "" if metres is None else f"{metres / 1000:.1f}"


@register.simple_tag
def course_profile(course, width: int = 300, height: int = 48) -> str:
    """A filled elevation silhouette of a course, as inline SVG (empty without elevations)."""
    top = profile_coordinates(course.points, width, height, top=4)
    if not top:
        return ""
    return format_html(
        '<svg viewBox="0 0 {w} {h}" preserveAspectRatio="none" focusable="false">'
        '<polygon points="0,{h} {top} {w},{h}" fill="#ffe4d6"/>'
        '<polyline points="{top}" fill="none" stroke="#ff5a1f" stroke-width="1.5"'
        ' vector-effect="non-scaling-stroke"/></svg>',
        w=width,
        h=height,
        top=top,
    )


RACE_STATUS_LABELS = {"running": "Live"}


@register.filter
def status_label(race) -> str:
    """What a spectator calls a race's status: a running race is "Live"."""
    return RACE_STATUS_LABELS.get(race.status) or race.get_status_display()
