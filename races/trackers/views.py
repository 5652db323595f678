"""The device endpoints under `/ingest/`: CSRF-exempt, sessionless, JSON answers.

- `GET|POST /ingest/osmand/`: OsmAnd and Traccar Client (query or form parameters, or
  Traccar Client 9's JSON body);
- `POST /ingest/owntracks/<token>/`: OwnTracks in HTTP mode (answers `[]`, as it expects);
- `POST /ingest/traccar/`: a Traccar server's JSON position forwarding.

Every answer is JSON with a reason; none is a 500 (see races.trackers.ingest for what
each status means to the app).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from races.operations import tracker_metrics
from races.trackers import fixes
from races.trackers.fixes import Fix, Malformed
from races.trackers.ingest import Outcome, Refused, ingest

logger = logging.getLogger(__name__)

JSON_TYPES = ("application/json", "text/json")


def _body(request: HttpRequest, source: str) -> bytes:
    """The request body, refused (413) past TRACKER_MAX_BODY_BYTES before it is read whole."""
    limit = settings.TRACKER_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise Refused(413, "too_large", f"the body is {declared} bytes; the limit is {limit}")
    data = request.read(limit + 1)
    if len(data) > limit:
        raise Refused(413, "too_large", f"the body is over the limit of {limit} bytes")
    return data


def _json(data: bytes) -> object:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        raise Malformed(f"the body is not JSON: {str(error)[:120]}") from error


def _answer(source: str, read: Callable[[], list[Fix] | None], ok: Callable) -> HttpResponse:
    """Run one request through `read` and the ingest; turn every refusal into its answer."""
    try:
        batch = read()
        outcome = ingest(source, batch) if batch else Outcome()
        if batch is None:
            tracker_metrics.ignored(source, "not_a_location")
            outcome.ignored["not_a_location"] = 1
    except (Malformed, SuspiciousOperation) as error:  # e.g. too many query parameters
        tracker_metrics.refused(source, "malformed")
        return JsonResponse({"error": str(error) or "malformed request"}, status=400)
    except Refused as refused:
        if refused.reason == "too_large":
            tracker_metrics.refused(source, "too_large")
        elif refused.reason == "malformed":
            tracker_metrics.refused(source, "malformed")
        return JsonResponse({"error": refused.message}, status=refused.status)
    return ok(outcome)


def _outcome_json(outcome: Outcome) -> JsonResponse:
    return JsonResponse(outcome.as_json())


@csrf_exempt
@require_http_methods(["GET", "POST"])
def osmand(request: HttpRequest) -> HttpResponse:
    """OsmAnd / Traccar Client: parameters in the query or the form, or Traccar Client 9's
    JSON body (its `device_id`, or `?id=` in the URL, is the token)."""

    def read() -> list[Fix]:
        body = _body(request, "osmand") if request.method == "POST" else b""
        content_type = request.content_type or ""
        if body.strip().startswith(b"{") or content_type in JSON_TYPES:
            token = request.GET.get("id") or request.GET.get("deviceid")
            return [fixes.from_traccar_client(_json(body), token)]
        params = dict(request.GET.items())
        if body and content_type == "application/x-www-form-urlencoded":
            try:
                params.update(QueryDict(body, encoding="utf-8").items())
            except ValueError as error:  # too many fields
                raise Malformed(str(error)) from error
        return [fixes.from_osmand_params(params)]

    return _answer("osmand", read, _outcome_json)


@csrf_exempt
@require_http_methods(["POST"])
def owntracks(request: HttpRequest, token: str) -> HttpResponse:
    """OwnTracks in HTTP mode: the token is in the URL; the answer is always a JSON list
    (OwnTracks reads it for friends' positions: none here)."""

    def read() -> list[Fix] | None:
        fix = fixes.from_owntracks(_json(_body(request, "owntracks")), token)
        return None if fix is None else [fix]

    def ok(outcome: Outcome) -> HttpResponse:
        response = JsonResponse([], safe=False)
        response["X-RaceWeb-Outcome"] = json.dumps(outcome.as_json())
        return response

    return _answer("owntracks", read, ok)


@csrf_exempt
@require_http_methods(["POST"])
def traccar(request: HttpRequest) -> HttpResponse:
    """A Traccar server's position forward (`forward.type=json`): the device's uniqueId is
    the token, unless the forward URL carries `?token=`."""

    def read() -> list[Fix]:
        body = _json(_body(request, "traccar"))
        return [fixes.from_traccar_forward(body, request.GET.get("token"))]

    return _answer("traccar", read, _outcome_json)
