"""Azure OpenAI's paths on the simulator, so the real `AzureOpenAI` / `AsyncAzureOpenAI` clients run
end to end offline: a deployment's calls (`/openai/deployments/{name}/chat/completions?api-version=...`,
where the deployment names the model), the `/openai/v1/...` surface, and the Azure client's calls
outside a deployment (`/openai/responses?api-version=...`). Auth is the `api-key` header or a bearer
token. The simulator's deployments are its models: deployment `gpt-4o-mini` answers as that model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .errors import APIError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PREFIX = "/openai"
API_VERSION = "api-version"
# The calls Azure routes through a deployment (the SDK's `_deployments_endpoints` the simulator serves).
DEPLOYMENT_CALLS = ("/chat/completions", "/completions", "/embeddings")


def is_azure_path(path: str) -> bool:
    return path.startswith(PREFIX + "/")


def add_routes(app: web.Application) -> None:
    """Serve every `/v1/...` route added so far under Azure's paths too; call it after the others."""
    for route in list(app.router.routes()):
        resource = route.resource
        if resource is None or not resource.canonical.startswith("/v1/") or route.method == "HEAD":
            continue
        tail = resource.canonical.removeprefix("/v1")
        app.router.add_route(route.method, f"{PREFIX}/v1{tail}", route.handler)
        app.router.add_route(route.method, f"{PREFIX}{tail}", _versioned(route.handler))
        if route.method == "POST" and tail in DEPLOYMENT_CALLS:
            app.router.add_route(route.method, f"{PREFIX}/deployments/{{deployment}}{tail}", _versioned(route.handler))


def _versioned(handler: Handler) -> Handler:
    """Azure's dated API (outside `/openai/v1/`) wants `?api-version=`: a request without it is refused,
    so a client (or a proxy) that loses the query string finds out."""

    async def versioned(request: web.Request) -> web.StreamResponse:
        if not request.query.get(API_VERSION):
            raise APIError(
                400,
                f"Missing required query parameter '{API_VERSION}' on {request.path} (Azure OpenAI's dated API).",
                param=API_VERSION,
                code="missing_api_version",
            )
        return await handler(request)

    versioned.__name__ = getattr(handler, "__name__", "handler")
    return versioned
