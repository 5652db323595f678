"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raceweb.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from races.metrics import register_web_collectors  # noqa: E402

register_web_collectors()

application = ProtocolTypeRouter({"http": django_asgi_app})
