"""Which model a request names: base models from the catalog, fine-tuned ones from the state."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from . import catalog
from .errors import APIError, model_not_found
from .finetune import settle_all
from .inference import BaseBrain, Brain
from .learned import LearnedBrain
from .runtime import CONFIG, STATE


@dataclass
class Resolved:
    name: str  # as the request named it
    seed_model: str  # the name hashed into the seed: a base model's, or the fine-tune's
    brain: Brain
    fingerprint: str


def resolve_text_model(app: web.Application, name: str, kinds: tuple[str, ...] = ("chat",)) -> Resolved:
    """A model that writes text, or a 404 (unknown) / 400 (wrong kind) error."""
    drift = app[CONFIG].drift
    if name in catalog.CHAT_MODELS and "chat" in kinds or name in catalog.COMPLETION_MODELS and "completion" in kinds:
        return Resolved(name, name, BaseBrain(), catalog.fingerprint(name, drift))
    if name.startswith("ft:"):
        settle_all(app[STATE])  # a job that just finished makes its model available now
    record = app[STATE].models.get(name)
    if record is not None and "chat" in kinds:
        return Resolved(name, record["base"], LearnedBrain(record), catalog.fingerprint(name, drift))
    if name in catalog.ALL_BASE_MODELS or record is not None:
        raise APIError(
            404,
            f"The model `{name}` is not supported on this endpoint ({'/'.join(kinds)} models only).",
            param="model",
            code="model_not_found",
        )
    raise model_not_found(name)


async def list_models(request: web.Request) -> web.Response:
    settle_all(request.app[STATE])
    data = [catalog.model_object(m) for m in catalog.ALL_BASE_MODELS]
    for record in request.app[STATE].models.values():
        data.append(catalog.model_object(record["id"], record["owned_by"], record["created"]))
    return web.json_response({"object": "list", "data": data})


async def retrieve_model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    if name in catalog.ALL_BASE_MODELS:
        return web.json_response(catalog.model_object(name))
    settle_all(request.app[STATE])
    record = request.app[STATE].models.get(name)
    if record is None:
        raise model_not_found(name)
    return web.json_response(catalog.model_object(record["id"], record["owned_by"], record["created"]))


async def delete_model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    state = request.app[STATE]
    if name in catalog.ALL_BASE_MODELS:
        raise APIError(
            403,
            f"You do not have permission to delete the model `{name}`; only fine-tuned models can be deleted.",
            type="invalid_request_error",
            code="model_not_deletable",
        )
    if name not in state.models:
        raise model_not_found(name)
    del state.models[name]
    state.save()
    return web.json_response({"id": name, "object": "model", "deleted": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model}", retrieve_model)
    app.router.add_delete("/v1/models/{model}", delete_model)
