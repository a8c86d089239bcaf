"""`json_function`: the one wrapper every function's handler goes through.

Checks run in a fixed order, cheapest and least revealing first:
    1. route and method        404 NOT_FOUND / 405 METHOD_NOT_ALLOWED (+ Allow)
    2. body size               413 PAYLOAD_TOO_LARGE (before reading it)
    3. identity                401 UNAUTHENTICATED (unless the function is public): a Firebase
                               ID token, or on the seat functions a machine key (`ck_...`,
                               shared/auth/machine_keys.py)
    4. rate limits             429 RATE_LIMITED (+ Retry-After): per client IP and per user
                               (per machine key for a machine) in Redis, one round trip;
                               public functions per IP in process; a request refused at
                               step 3 is still charged to its IP
    5. content type and JSON   415 UNSUPPORTED_MEDIA_TYPE / 400 INVALID_REQUEST
then the handler. A ServiceError becomes its JSON envelope; anything else is logged
with its traceback and answered 500 INTERNAL with no detail. Every request writes
exactly one structured log line (see request_log).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import flask

from shared.config import Settings
from shared.domain import Principal
from shared.domain.machine_keys import looks_like_machine_key
from shared.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    Unauthenticated,
    UnsupportedMediaType,
)
from shared.http.downloads import Download, StaticFile
from shared.http.request_log import write_request_log
from shared.observability import open_request_context
from shared.runtime import runtime

if TYPE_CHECKING:
    import pydantic

log = logging.getLogger(__name__)
Model = TypeVar("Model", bound="pydantic.BaseModel")
Body: TypeAlias = "dict[str, Any] | Download | StaticFile"
HandlerResult = tuple[int, Body] | tuple[int, Body, dict[str, str]]
"""What a function's handler returns: (status, JSON body or a file) or (status, body, extra headers)."""


@dataclass
class Call:
    """One request, as a handler sees it."""

    request: flask.Request
    route: str  # the matched route template, e.g. "licenses/{license_id}"
    params: dict[str, str] = field(default_factory=dict)
    principal: Principal | None = None
    client_ip: str = ""
    """The caller's address, as far as the trusted proxies say (TRUSTED_PROXY_HOPS)."""
    _json: Any = field(default=None, repr=False)

    @property
    def caller(self) -> Principal:
        """The authenticated caller (every function that is neither public nor the scheduler's)."""
        if self.principal is None:
            raise Unauthenticated("this route needs a Firebase ID token")
        return self.principal

    def parse(self, model: type[Model]) -> Model:
        """The JSON body as `model`; wrong shapes and types are 400 with the fields named."""
        return _validated(model, self._json, "the request body does not match the contract")

    def query(self, model: type[Model]) -> Model:
        """The query string as `model` (one value per parameter); 400 naming the parameters."""
        return _validated(model, self.request.args.to_dict(), "the query string does not match the contract")


def _validated(model: type[Model], data: Any, message: str) -> Model:
    import pydantic  # here, not at import: health and jwks parse nothing and ship without it

    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "problem": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidRequest(message, fields=problems) from None


def methods_by_route(handlers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """{route: [methods]} of (method, route) pairs: a function's routes declared once, by its handlers."""
    routes: dict[str, list[str]] = {}
    for method, route in handlers:
        routes.setdefault(route, []).append(method)
    return routes


_MAX_TOKEN_CHARS = 8192


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; raises Unauthenticated."""
    if not authorization:
        raise Unauthenticated("an Authorization: Bearer <Firebase ID token or machine key> header is required")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("the Authorization header must be 'Bearer <Firebase ID token or machine key>'")
    if len(token) > _MAX_TOKEN_CHARS:
        raise Unauthenticated("the bearer token is too long to be an ID token")
    return token


def client_ip(request: flask.Request, trusted_proxy_hops: int) -> str:
    """The caller's address: the X-Forwarded-For entry our own trusted proxy appended.

    Entries to its left are whatever the client chose to send, so they are never used.
    """
    if trusted_proxy_hops > 0:
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        if len(hops) >= trusted_proxy_hops:
            return hops[-trusted_proxy_hops]
    return request.remote_addr or "unknown"


def _route_of(request: flask.Request) -> str:
    return request.path.strip("/")


def _match(templates: Iterable[str], path: str) -> tuple[str, dict[str, str]] | None:
    """The template a path fits ("licenses/{license_id}" fits "licenses/lic_1") and its values."""
    parts = path.split("/") if path else []
    for template in templates:
        pattern = template.split("/") if template else []
        if len(pattern) != len(parts):
            continue
        params: dict[str, str] = {}
        for want, got in zip(pattern, parts, strict=True):
            if want.startswith("{") and want.endswith("}") and got:
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            return template, params
    return None


def _read_json(request: flask.Request, max_bytes: int) -> Any:
    """The JSON body; a declared oversized length was already refused before auth."""
    mimetype = request.mimetype
    if mimetype != "application/json":
        raise UnsupportedMediaType("send the body as JSON with Content-Type: application/json")
    raw = request.stream.read(max_bytes + 1)  # also bounds bodies sent without a length
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the body is over the limit of {max_bytes} bytes", limit=max_bytes)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("the body is not valid JSON: nested too deeply") from None
    except ValueError:  # an integer beyond Python's digit limit for str -> int
        raise InvalidRequest("the body is not valid JSON: a number is too long") from None
    try:
        # A "\ud800" escape decodes to a lone surrogate, which no backend can store:
        # refuse it here, once for the whole body, instead of failing deep inside.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("the body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text") from None
    return body


def _response(status: int, body: dict[str, Any] | Download | StaticFile,
              headers: dict[str, str] | None = None) -> flask.Response:
    cache_control = "no-store"
    if isinstance(body, StaticFile):
        # (content_type, not mimetype: werkzeug would append a second charset to one given)
        response = flask.Response(body.content, status=status, content_type=body.media_type)
        if body.gzipped:
            response.headers["Content-Encoding"] = "gzip"
        response.headers["Vary"] = "Accept-Encoding"
        cache_control = body.cache_control
    elif isinstance(body, Download):
        response = flask.Response(body.text, status=status, mimetype=body.media_type)
        response.headers["Content-Disposition"] = f'attachment; filename="{body.filename}"'
    else:
        response = flask.Response(json.dumps(body, separators=(",", ":")), status=status,
                                  mimetype="application/json")
    response.headers["Cache-Control"] = cache_control
    # Answers carry text users chose (hostnames, tenant names): a browser must never sniff
    # one as HTML, whatever it holds.
    response.headers["X-Content-Type-Options"] = "nosniff"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _error_response(error: ServiceError, extra_headers: dict[str, str] | None = None) -> flask.Response:
    headers = dict(extra_headers or {})
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    return _response(error.http_status, error.envelope(), headers)


def _identify(token: str, checks_accounts: bool) -> Principal:
    """The caller a bearer token names: a machine key on the seat functions, else an ID token
    (`checks_accounts`: the admin function's, whose callers' accounts are checked too)."""
    if looks_like_machine_key(token):
        if checks_accounts:
            raise Unauthenticated("a machine key opens the seat functions only (acquire, heartbeat, borrow, release, "
                                  "validate); administration needs a Firebase ID token")
        return runtime().machine_key_verifier.verify(token)
    verifier = runtime().admin_token_verifier if checks_accounts else runtime().token_verifier
    return verifier.verify(token)


def json_function(
    name: str,
    *,
    routes: Mapping[str, Iterable[str]],
    public: bool = False,
    scheduler: bool = False,
    checks_accounts: bool = False,
) -> Callable[[Callable[[Call], HandlerResult]], Callable[[flask.Request], flask.Response]]:
    """Wrap a handler as a functions-framework HTTP function.

    Args:
        name: the function's name (log field `function`).
        routes: sub-path template ("" for the root, "{name}" for a path segment) -> HTTP
            methods it answers.
        public: True for functions that take no Firebase ID token.
        scheduler: True for functions only Cloud Scheduler may call (its OIDC token).
        checks_accounts: True to check each caller's account is still as its token says
            (not disabled, revoked or re-roled): the admin function.
    """
    allowed = {route: frozenset(methods) for route, methods in routes.items()}
    # Read the settings now, at import: a function whose configuration is unsafe or broken
    # (emulator tokens on a real project, a malformed number) must fail to start, loudly,
    # rather than serve until its first request.
    Settings.from_env()

    def decorate(handler: Callable[[Call], HandlerResult]) -> Callable[[flask.Request], flask.Response]:
        def view(request: flask.Request) -> flask.Response:
            started = time.perf_counter()
            fields = open_request_context()
            matched = _match(allowed, _route_of(request))
            route = matched[0] if matched else _route_of(request)
            status = 500
            outcome = "INTERNAL"
            try:
                response = _serve(request, matched, handler)
                status, outcome = response.status_code, "OK"
            except ServiceError as error:
                headers = {"Allow": ", ".join(sorted(allowed[route]))} if isinstance(error, MethodNotAllowed) else None
                response = _error_response(error, headers)
                status, outcome = error.http_status, error.code
                if "backend" in error.details:  # which backend is down: an alert's label
                    fields["backend"] = error.details["backend"]
            except Exception:  # noqa: BLE001 - the one place unexpected failures are caught
                log.exception("unhandled error in function %s", name)
                response = _response(500, {"error": {"code": "INTERNAL",
                                                     "message": "internal error; it has been logged"}})
            write_request_log(
                request,
                function=name,
                route=route,
                status=status,
                outcome=outcome,
                latency_ms=(time.perf_counter() - started) * 1000,
                fields=fields,
            )
            return response

        def _serve(request: flask.Request, matched, handler: Callable[[Call], HandlerResult]) -> flask.Response:
            if matched is None:
                raise NotFound(f"{name} has no route /{_route_of(request)}")
            route, params = matched
            if request.method not in allowed[route]:
                raise MethodNotAllowed(f"{request.method} is not allowed here; use {', '.join(sorted(allowed[route]))}")
            settings = runtime().settings
            if request.content_length is not None and request.content_length > settings.max_body_bytes:
                raise PayloadTooLarge(
                    f"the body is {request.content_length} bytes; the limit is {settings.max_body_bytes}",
                    limit=settings.max_body_bytes,
                )
            ip = client_ip(request, settings.trusted_proxy_hops)
            call = Call(request=request, route=route, params=params, client_ip=ip)
            if public:
                runtime().local_rate_limiter.charge("ip", ip, settings.rate_limit_public_ip)
            elif scheduler:
                # With X-Serverless-Authorization, Cloud Run checks that header, not Authorization.
                serverless = "X-Serverless-Authorization" in request.headers
                runtime().scheduler_verifier(name).verify(bearer_token(request.headers.get("Authorization")),
                                                          serverless_authorization=serverless)
            else:
                limiter = runtime().rate_limiter
                try:
                    call.principal = _identify(bearer_token(request.headers.get("Authorization")), checks_accounts)
                except Unauthenticated:
                    limiter.charge([("ip", ip, settings.rate_limit_ip)])  # floods of bad tokens too
                    raise
                caller = call.principal
                per_caller = (("key", caller.machine.key_id, settings.rate_limit_machine_key) if caller.machine
                              else ("user", caller.uid, settings.rate_limit_user))
                limiter.charge([("ip", ip, settings.rate_limit_ip), per_caller])
            has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
            if request.method in ("POST", "PUT", "PATCH") and (has_body or not scheduler):
                call._json = _read_json(request, settings.max_body_bytes)
            answer = handler(call)
            return _response(*answer)

        view.__name__ = handler.__name__
        view.__doc__ = handler.__doc__
        return view

    return decorate
