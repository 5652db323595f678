"""ASGI entry point: HTTP through Django, WebSockets through the race sockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raceweb.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from races.metrics import register_web_collectors  # noqa: E402
from races.routing import websocket_urlpatterns  # noqa: E402

register_web_collectors()

# No AuthMiddlewareStack: spectators are anonymous, and a session lookup per socket
# would put the database on every connect. Origins are checked by the sockets.
application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": URLRouter(websocket_urlpatterns)}
)

if settings.EMBEDDED:
    from races.embedded import EmbeddedRelayMiddleware

    application = EmbeddedRelayMiddleware(application)
