"""A manifest version as the proxy's learned tier: which model, which seed, which trained answers.

    from pytest_seedreplay import Proxy
    from pytest_seedreplay.finetune.serving import finetune_tier

    with Proxy("https://api.openai.com/v1", tiers=[finetune_tier("latest")]) as proxy: ...

The guard serves only answers the model was trained on; they come from the dataset the version was
trained on (its sha256 checked), or, for a version that names no dataset (a job seedreplay did not
start), from the recorded chat answers of its base model in a store.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..core.aliases import names_of, same_model
from ..core.constants import CHAT
from .manifest import DEFAULT_MANIFEST, Manifest, ManifestError, Version
from .validate import DatasetError, read_dataset

if TYPE_CHECKING:
    from pytest_seedreplay.proxy.tier_finetune import FinetuneTier
    from pytest_seedreplay.store import Store


def finetune_tier(
    spec: str = "latest",
    manifest: str | os.PathLike[str] | Manifest = DEFAULT_MANIFEST,
    guard: bool = True,
    store_answers: bool = False,
    recordings: Store | None = None,
) -> FinetuneTier:
    """The `finetune` tier for the manifest version `spec` (`latest`, `3`/`v3`, its fine-tuned model or
    job id). `recordings`: where to find the trained answers when the version names no dataset.
    Raises ManifestError saying what to do when the version or its answers cannot be found."""
    from pytest_seedreplay.proxy.tier_finetune import Finetune, FinetuneTier

    manifest = manifest if isinstance(manifest, Manifest) else Manifest(manifest)
    version = manifest.find(spec)
    trained = trained_answers(manifest, version, recordings) if guard else ()
    finetune = Finetune(version.base_model, version.fine_tuned_model, version.seed, version.label, tuple(trained))
    return FinetuneTier(finetune, guard=guard, store_answers=store_answers)


def trained_answers(manifest: Manifest, version: Version, recordings: Store | None = None) -> list[dict[str, Any]]:
    """The assistant answers `version` was trained to give (the last message of each example)."""
    path = manifest.dataset_path(version)
    if path is None:
        if recordings is None:
            raise ManifestError(
                f"{version.label} names no dataset, so the guard does not know its trained answers; "
                "give it the recordings (a store), or turn the guard off"
            )
        found = recorded_answers(recordings, version.base_model)
        if not found:
            raise ManifestError(
                f"{version.label} names no dataset and {recordings.location} holds no chat answer of "
                f"{version.base_model}: the guard has nothing to let through"
            )
        return found
    try:
        data = read_dataset(path)
    except DatasetError as exc:
        raise ManifestError(
            f"{exc}: the guard needs the dataset {version.label} was trained on; restore it (git checkout) or turn the guard off"
        ) from None
    from .export import sha256

    if version.dataset_sha256 and sha256(data.raw) != version.dataset_sha256:
        raise ManifestError(
            f"{path} changed since {version.label} was trained (sha256 differs): its answers are not "
            "the ones the model learned; restore it (git checkout)"
        )
    answers = [answer for answer in (last_answer(e) for e in data.examples) if answer is not None]
    if not answers:
        raise ManifestError(f"{path} holds no example ending in an assistant answer")
    return answers


def last_answer(example: Any) -> dict[str, Any] | None:
    """The assistant message an example teaches, or None."""
    messages = example.get("messages") if isinstance(example, dict) else None
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return None
    last = messages[-1]
    return last if last.get("role") == "assistant" else None


def recorded_answers(store: Store, base_model: str) -> list[dict[str, Any]]:
    """The first-choice message of every recorded chat answer to a request for `base_model` (by any of its names)."""
    from ..shapes import answer_body

    found = []
    for entry in store.iter_entries():
        model = entry.request.get("params", {}).get("model")
        if entry.endpoint != CHAT or not isinstance(model, str) or not same_model(model, base_model):
            continue
        try:
            body = answer_body(entry)
        except ValueError:
            continue
        choices = body.get("choices") if isinstance(body, dict) else None
        message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        if isinstance(message, dict):
            found.append(message)
    return found


def recorded_models(store: Store) -> dict[str, int]:
    """How many chat recordings each model has in `store`, most first."""
    counts: dict[str, int] = {}
    for _key, request in store.iter_requests():
        model = request.get("params", {}).get("model") if isinstance(request, dict) else None
        if request.get("endpoint") == CHAT and isinstance(model, str):
            counts[model] = counts.get(model, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def other_models_warning(base_model: str, store: Store) -> str | None:
    """A warning when the chat recordings in `store` ask for other models than the ones the tier
    answers: those requests miss the exact tier and never reach the fine-tune either."""
    answers_to = names_of(base_model)
    recorded = recorded_models(store)
    others = {model: count for model, count in recorded.items() if model not in answers_to}
    if not others:
        return None
    shown = ", ".join(f"{model} ({count})" for model, count in list(others.items())[:5])
    more = f" and {len(others) - 5} more" if len(others) > 5 else ""
    return (
        f"warning: the fine-tune tier answers only {' or '.join(answers_to)}; recordings in {store.location} "
        f"ask for {shown}{more}: requests for those models never reach the fine-tune"
    )
