"""The simulator answers any model name on embeddings as it does on chat (a real suite names many
models), `strict_models` keeps the API's 404; and the proxy's in-process simulator (`--upstream sim`,
`Proxy("sim")`) can be asked for `strict_models`."""

from __future__ import annotations

import openai
import pytest
from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.proxy.sim import SimConfig

from proxy_support import API_KEY, MODEL, messages
from test_proxy_cli import spawn  # noqa: F401 (a fixture)

UNKNOWN = "acme-embed-v2"


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=API_KEY, max_retries=0)


def test_embeddings_answer_any_model_name_by_default(sim):
    with client(sim.url) as api:
        made = api.embeddings.create(model=UNKNOWN, input=["one", "two"])
        assert made.model == UNKNOWN and [len(d.embedding) for d in made.data] == [1536, 1536]
        assert len(api.embeddings.create(model=UNKNOWN, input="one", dimensions=256).data[0].embedding) == 256
        with pytest.raises(openai.NotFoundError, match="not an embedding model"):  # a chat model is still the API's 404
            api.embeddings.create(model=MODEL, input="one")


def test_strict_models_keeps_the_404_on_embeddings(sim_factory):
    strict = sim_factory(strict_models=True)
    with client(strict.url) as api, pytest.raises(openai.NotFoundError) as missing:
        api.embeddings.create(model=UNKNOWN, input="one")
    assert missing.value.body["code"] == "model_not_found"


def test_the_proxys_in_process_simulator_takes_its_settings(proxy_factory):
    lenient, strict = proxy_factory("sim"), proxy_factory("sim", sim=SimConfig(strict_models=True))
    assert lenient.client().chat.completions.create(model="acme-chat", messages=messages(), seed=1).choices
    assert lenient.client().embeddings.create(model=UNKNOWN, input="one").data
    for ask in (
        lambda api: api.chat.completions.create(model="acme-chat", messages=messages(), seed=1),
        lambda api: api.embeddings.create(model=UNKNOWN, input="one"),
    ):
        with pytest.raises(openai.NotFoundError):
            ask(strict.client())


def test_sim_strict_models_on_the_command_line(spawn, tmp_path):  # noqa: F811
    proxy = spawn("--upstream", "sim", "--sim-strict-models", "--cache-dir", str(tmp_path / "cache"))
    with proxy.client() as api, pytest.raises(openai.NotFoundError):
        api.chat.completions.create(model="acme-chat", messages=messages(), seed=1)
    refused = CliRunner().invoke(main, ["proxy", "--upstream", "http://127.0.0.1:9/v1", "--sim-strict-models"])
    assert refused.exit_code == 2 and "--upstream sim" in refused.output
