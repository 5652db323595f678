"""ASGI entry point: HTTP through Django, WebSockets through the race sockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raceweb.settings")
django_asgi_app = get_asgi_application()

import autobahn.util  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from races import deployment  # noqa: E402
from races.operations.garbage_collection import tune_for_long_running_process  # noqa: E402
from races.operations.races_running import register_web_collectors  # noqa: E402
from races.spectators.routing import websocket_urlpatterns  # noqa: E402
from races.spectators.socket_limits import SocketLimits  # noqa: E402

register_web_collectors()

# autobahn (daphne's WebSocket layer, 26.10) formats the arguments of a debug log call for
# every frame it sends, debug logging on or not, and colours them with click when click is
# importable (Celery brings it): about 8 % of a web process's CPU in the fan-out benchmark
# (py-spy, bench/run.py --profile). Uncoloured, the same arguments cost a fifth of that.
autobahn.util._HAS_CLICK = False

# No AuthMiddlewareStack: spectators are anonymous, and a session lookup per socket
# would put the database on every connect. Origins are checked by the sockets.
# Sockets per address and messages per socket are limited before any route runs.
application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": SocketLimits(URLRouter(websocket_urlpatterns))}
)

# Embedded mode runs the relay inside this process, around the application.
application = deployment.current().wrap_asgi(application)

tune_for_long_running_process()  # last: what start-up made is never scanned again
