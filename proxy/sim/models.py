"""Which model a request names: base models from the catalog, fine-tuned ones from the state."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import catalog
from .errors import APIError, bad_request, model_not_found
from .finetune import settle_all
from .inference import BaseBrain, Brain
from .learned import LearnedBrain
from .runtime import CONFIG, STATE

# Reasoning models (o1, o3-mini, o4-mini, gpt-5, gpt-5.4-mini ...; not gpt-5-chat-latest): they think
# before answering, so usage reports reasoning tokens, and they only take the default temperature/top_p.
_REASONING = re.compile(r"^(o\d+($|-)|gpt-5(?!.*-chat))")
# Tokens a reasoning model spends thinking, by `reasoning_effort` (the API's default is medium).
REASONING_TOKENS = {"none": 0, "minimal": 0, "low": 64, "medium": 192, "high": 448, "xhigh": 768}


@dataclass(frozen=True)
class Family:
    """What a model name implies for the answer's shape (a fine-tune behaves as its base)."""

    reasoning: bool = False
    search: bool = False  # gpt-4o-search-preview ...: answers cite a web source


def family_of(name: str) -> Family:
    base = name.split(":")[1] if name.startswith("ft:") and name.count(":") >= 2 else name
    return Family(reasoning=bool(_REASONING.match(base)), search="search" in base)


@dataclass
class Resolved:
    name: str  # as the request named it
    seed_model: str  # the name hashed into the seed: a base model's, or the fine-tune's
    brain: Brain
    fingerprint: str
    family: Family = field(default_factory=Family)


def resolve_text_model(app: web.Application, name: str, kinds: tuple[str, ...] = ("chat",)) -> Resolved:
    """A model that writes text, or a 404 (unknown, or outside the catalogue with `strict_models`)
    / 400 (wrong kind) error."""
    drift = app[CONFIG].drift
    if name in catalog.CHAT_MODELS and "chat" in kinds or name in catalog.COMPLETION_MODELS and "completion" in kinds:
        return Resolved(name, name, BaseBrain(), catalog.fingerprint(name, drift), family_of(name))
    if answers_any_name(app, name):
        return Resolved(name, name, BaseBrain(), catalog.fingerprint(name, drift), family_of(name))
    if name.startswith("ft:"):
        settle_all(app[STATE])  # a job that just finished makes its model available now
    record = app[STATE].models.get(name)
    if record is not None and "chat" in kinds:
        return Resolved(name, record["base"], LearnedBrain(record), catalog.fingerprint(name, drift), family_of(record["base"]))
    if name in catalog.ALL_BASE_MODELS or record is not None:
        raise APIError(
            404,
            f"The model `{name}` is not supported on this endpoint ({'/'.join(kinds)} models only).",
            param="model",
            code="model_not_found",
        )
    raise model_not_found(name)


def answers_any_name(app: web.Application, name: str) -> bool:
    """Real suites name many models: any name outside the catalogue answers as a base model, unless
    `strict_models`. A fine-tune (`ft:...`) must exist, and a catalogued model of another kind (an
    embedding model on chat) is still the API's 404."""
    return not app[CONFIG].strict_models and not name.startswith("ft:") and name not in catalog.ALL_BASE_MODELS


def check_family(model: Resolved, body: dict[str, Any], length_param: str | None = "max_tokens") -> None:
    """400 for what a reasoning model refuses, worded as the API words it."""
    if not model.family.reasoning:
        return
    for param in ("temperature", "top_p"):
        value = body.get(param)
        if value is not None and not isinstance(value, bool) and isinstance(value, (int, float)) and value != 1:
            shown = int(value) if float(value).is_integer() else value
            raise bad_request(
                f"Unsupported value: '{param}' does not support {shown} with this model. "
                "Only the default (1) value is supported.",
                param,
                "unsupported_value",
            )
    if length_param is not None and body.get(length_param) is not None:
        raise bad_request(
            f"Unsupported parameter: '{length_param}' is not supported with this model. Use 'max_completion_tokens' instead.",
            length_param,
            "unsupported_parameter",
        )


def reasoning_tokens(model: Resolved, effort: Any) -> int:
    """Deterministic thinking cost of one answer: by effort for reasoning models, else 0."""
    if not model.family.reasoning:
        return 0
    return REASONING_TOKENS.get(effort if isinstance(effort, str) else "medium", REASONING_TOKENS["medium"])


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
    if answers_any_name(request.app, name):
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
