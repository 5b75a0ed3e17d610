"""The plugin's markers, fixtures, guards and error paths, each through a real inner pytest session."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil

import pytest
import yaml

from plugin_inner import INI, TEST_KEY, cassette_dir, run, setup_project


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)


def requests_in(path) -> list[dict]:
    data = yaml.safe_load(path.read_text())
    return [json.loads(i["request"]["body"]) for i in data["interactions"]]


def test_marker_seed_is_injected_into_requests_that_carry_none(pytester, sim):
    setup_project(
        pytester,
        test_seeded="""
            import pytest

            @pytest.mark.seedreplay(seed=42)
            def test_seeded(openai_client):
                for extra in ({}, {"seed": 7}):
                    openai_client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "pick"}], **extra)
        """,
    )
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    sent = requests_in(cassette_dir(pytester) / "test_seeded" / "test_seeded.yaml")
    assert [r["seed"] for r in sent] == [42, 7]
    run(pytester).assert_outcomes(passed=1)


def test_tests_sharing_a_cassette_name_record_into_one_file(pytester, sim):
    shared = """
        import pytest

        @pytest.mark.seedreplay(cassette="shared_answers")
        def test_{name}(openai_client):
            for text in ("common", "{name}"):
                openai_client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{{"role": "user", "content": text}}], seed=1)
    """
    setup_project(pytester, test_one=shared.format(name="one"), test_two=shared.format(name="two"))
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=2)
    path = cassette_dir(pytester) / "shared_answers.yaml"
    assert sorted(r["messages"][0]["content"] for r in requests_in(path)) == ["common", "one", "two"]
    assert [p.name for p in cassette_dir(pytester).rglob("*.yaml")] == ["shared_answers.yaml"]
    before = sim.stats()["total"]
    run(pytester).assert_outcomes(passed=2)
    assert sim.stats()["total"] == before


def test_marker_mode_overrides_the_session_mode(pytester, sim):
    setup_project(
        pytester,
        test_marked="""
            import pytest

            @pytest.mark.seedreplay(mode="record")
            def test_always_records(openai_client, seedreplay):
                openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "r"}])
                assert seedreplay.mode == "record"

            @pytest.mark.seedreplay(mode="replay")
            def test_pinned_to_replay(openai_client):
                openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "p"}])
        """,
    )
    result = run(pytester, f"--seedreplay-upstream={sim.url}", "--tb=short")
    result.assert_outcomes(passed=1, failed=1)
    assert (cassette_dir(pytester) / "test_marked" / "test_always_records.yaml").exists()
    result.stdout.fnmatch_lines(["*this test's @pytest.mark.seedreplay sets mode='replay': change or drop it first*"])


TRANSPORTS = [name for name in ("httpx", "httpx2") if importlib.util.find_spec(name)]
# The one the installed SDK sends through (openai 3.x: httpx2; 1.x: httpx, with httpx2 possibly installed
# beside it by another package).
SDK_TRANSPORT = "httpx2" if hasattr(importlib.import_module("openai._base_client"), "httpx2") else "httpx"


def test_replay_blocks_clients_that_bypass_the_proxy(pytester):
    setup_project(
        pytester,
        test_bypass=f"""
            import importlib
            import openai
            import pytest

            @pytest.mark.parametrize("transport", {TRANSPORTS!r})
            def test_raw_http_call(transport):
                importlib.import_module(transport).get("https://api.openai.com/v1/models")

            def test_client_with_its_own_base_url():
                client = openai.OpenAI(base_url="https://api.openai.com/v1", max_retries=0)
                try:
                    client.models.list()
                except openai.APIConnectionError:
                    pass  # swallowed by the code under test: the test must still fail

            @pytest.mark.parametrize("transport", {TRANSPORTS!r})
            def test_loopback_stays_allowed(seedreplay_proxy, transport):
                assert importlib.import_module(transport).get(seedreplay_proxy.root + "/healthz").status_code == 200
        """,
    )
    result = run(pytester, "--tb=short")
    result.assert_outcomes(passed=len(TRANSPORTS), failed=len(TRANSPORTS) + 1)
    result.stdout.fnmatch_lines(
        [
            "*NetworkBlocked: seedreplay blocked GET https://api.openai.com/v1/models: replay mode answers OpenAI calls "
            "from cassettes only. Leave base_url unset so OPENAI_BASE_URL (http://127.0.0.1:*/v1) is used*",
            "*seedreplay: blocked network access in replay mode:*",
            "*GET https://api.openai.com/v1/models*",
            "*leave base_url unset so OPENAI_BASE_URL (http://127.0.0.1:*/v1) is used, or take the openai_client fixture*",
        ]
    )


def test_a_key_shaped_string_in_a_request_is_refused_with_a_clear_error(pytester, sim):
    setup_project(
        pytester,
        test_leak="""
            def test_prompt_leaks_a_key(openai_client):
                openai_client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "my key is sk-proj-AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}])
        """,
    )
    result = run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_prompt_leaks_a_key*",
            "seedreplay did not write cassettes/test_leak/test_prompt_leaks_a_key.yaml: refused to store an API-key-shaped string found at entry.request.params.messages*.content; remove the credential*",
        ]
    )
    assert not cassette_dir(pytester).exists() or not any(cassette_dir(pytester).rglob("*.yaml"))


def test_orphans_lists_cassettes_no_test_used(pytester, sim):
    setup_project(
        pytester,
        test_live_on="""
            def test_kept(openai_client):
                openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "k"}], seed=1)

            def test_other(openai_client):
                for text in ("a", "b"):
                    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}], seed=1)
        """,
    )
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=2)
    kept = cassette_dir(pytester) / "test_live_on" / "test_kept.yaml"
    shutil.copy(kept, kept.with_name("test_removed_long_ago.yaml"))
    result = run(pytester, "--seedreplay-orphans")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "orphan cassettes (no collected test uses them): 1",
            "*cassettes/test_live_on/test_removed_long_ago.yaml",
            "orphan interactions (recorded, never requested by tests that ran to the end): 0",
            "(judged against the 2 tests collected in this run: run the whole suite before deleting any)",
        ]
    )

    # A deselected test still owns its cassette; a test that stopped early is not judged on what it skipped.
    deselected = run(pytester, "--seedreplay-orphans", "-k", "kept")
    deselected.assert_outcomes(passed=1, deselected=1)
    deselected.stdout.fnmatch_lines(["orphan cassettes (no collected test uses them): 1", "orphan interactions*: 0"])
    assert "test_other.yaml" not in deselected.stdout.str()
    pytester.makepyfile(
        test_live_on=pytester.path.joinpath("test_live_on.py").read_text().replace('("a", "b")', '("a",)')
        + "\n    assert False\n"
    )
    stopped = run(pytester, "--seedreplay-orphans")
    stopped.assert_outcomes(passed=1, failed=1)
    stopped.stdout.fnmatch_lines(["orphan interactions*: 0"])


def test_off_leaves_everything_alone(pytester, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    setup_project(
        pytester,
        test_off="""
            import os

            def test_env_untouched(seedreplay, seedreplay_proxy):
                assert os.environ["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"
                assert seedreplay.mode == "off" and seedreplay_proxy.url == "http://127.0.0.1:9/v1"
        """,
    )
    result = run(pytester, "--seedreplay=off")
    result.assert_outcomes(passed=1)
    assert "seedreplay: mode" not in result.stdout.str() and "seedreplay (" not in result.stdout.str()


def test_the_environment_is_restored_after_the_session(pytester, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("OPENAI_API_KEY")
    setup_project(
        pytester,
        test_env="""
            import os

            def test_env_points_at_the_proxy(seedreplay_proxy):
                assert os.environ["OPENAI_BASE_URL"] == seedreplay_proxy.url != "http://127.0.0.1:9/v1"
                assert os.environ["OPENAI_API_KEY"]  # a dummy: replay needs no key
        """,
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["seedreplay: mode=replay, cassettes=*cassettes, upstream=http://127.0.0.1:9/v1"])
    assert os.environ["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"
    assert "OPENAI_API_KEY" not in os.environ


def test_subprocesses_and_non_sdk_clients_go_through_the_proxy(pytester, sim):
    setup_project(
        pytester,
        test_sub="""
            import json
            import subprocess
            import sys

            CHILD = '''
            import json, os, urllib.request
            body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "child"}], "seed": 3}).encode()
            request = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", body,
                                             {"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]})
            print(json.load(urllib.request.urlopen(request))["choices"][0]["message"]["content"])
            '''

            def test_child_process(seedreplay_proxy, seedreplay):
                out = subprocess.run([sys.executable, "-c", CHILD.replace("\\n            ", "\\n")],
                                     capture_output=True, text=True, check=True).stdout.strip()
                assert out
                with open("child.txt", "a") as f:
                    f.write(out + "\\n")
                assert len(seedreplay.interactions) == 1
        """,
    )
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    sim.stop()
    run(pytester).assert_outcomes(passed=1)
    first, second = (pytester.path / "child.txt").read_text().splitlines()
    assert first == second


def test_responses_api_records_and_replays_streams(pytester, sim):
    setup_project(
        pytester,
        test_resp="""
            def test_responses(openai_client):
                plain = openai_client.responses.create(model="gpt-4o-mini", input="Hi there")
                events = list(openai_client.responses.create(model="gpt-4o-mini", input="Stream it", stream=True))
                assert plain.output_text and events[-1].type == "response.completed"
                with open("out.txt", "a") as f:
                    f.write(plain.output_text + "|" + events[-1].response.output_text + "\\n")
        """,
    )
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    run(pytester).assert_outcomes(passed=1)
    first, second = (pytester.path / "out.txt").read_text().splitlines()
    assert first == second


def test_ini_sets_mode_cassette_dir_and_upstream(pytester, sim):
    pytester.makeini(f"""
        [pytest]
        seedreplay_mode = record
        seedreplay_cassette_dir = recordings/api
        seedreplay_upstream = {sim.url}
        asyncio_default_fixture_loop_scope = function
    """)
    pytester.makepyfile(
        test_ini="""
        def test_ini(openai_client):
            openai_client.embeddings.create(model="text-embedding-3-small", input="x")
    """
    )
    run(pytester).assert_outcomes(passed=1)
    assert (pytester.path / "recordings" / "api" / "test_ini" / "test_ini.yaml").exists()


def test_bad_marker_and_broken_cassette_are_setup_errors_that_say_what_to_do(pytester):
    setup_project(
        pytester,
        test_bad="""
            import pytest

            @pytest.mark.seedreplay(mode="recrod")
            def test_typo(openai_client):
                pass

            def test_broken(openai_client):
                pass
        """,
    )
    broken = cassette_dir(pytester) / "test_bad" / "test_broken.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text("interactions: [unclosed\n")
    result = run(pytester)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "*@pytest.mark.seedreplay(mode='recrod'): mode must be one of replay, record, rewrite, live, off",
            "*/cassettes/test_bad/test_broken.yaml: not valid YAML at line 2*",
            "*Fix or delete the file, then: pytest --seedreplay=record test_bad.py::test_broken",
        ]
    )


def test_an_unknown_ini_mode_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\nseedreplay_mode = replay-ish\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*seedreplay_mode = 'replay-ish': use one of replay, record, rewrite, live, off"])


def test_a_client_built_when_conftest_imports_the_app_is_intercepted(pytester, sim, monkeypatch):
    # conftest.py is imported before pytest_configure: the proxy must already be in OPENAI_BASE_URL.
    pytester.makeini(INI)
    pytester.makepyfile(
        myapp="""
            import openai

            client = openai.OpenAI(max_retries=0)

            def answer(question):
                reply = client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": question}], seed=1)
                return reply.choices[0].message.content
        """,
        test_uses_app="""
            import myapp

            def test_app_answers():
                assert myapp.answer("What is seedreplay?")
        """,
    )
    pytester.makeconftest("import myapp")
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    assert (cassette_dir(pytester) / "test_uses_app" / "test_app_answers.yaml").exists()
    sim.stop()
    run(pytester).assert_outcomes(passed=1)
    # Discovery (IDEs run --collect-only) imports the app too, and needs no key either.
    monkeypatch.delenv("OPENAI_API_KEY")
    assert run(pytester, "--collect-only", "-q").ret == pytest.ExitCode.OK


def test_a_cassette_recorded_by_plain_vcrpy_replays_unchanged(pytester, sim):
    # Migrating from vcrpy / pytest-recording: their cassettes are read as they are (re-keyed by request).
    import openai
    import vcr

    path = cassette_dir(pytester) / "test_migrated" / "test_legacy.yaml"
    with vcr.use_cassette(str(path), filter_headers=["authorization"]):
        client = openai.OpenAI(base_url=sim.url, api_key=TEST_KEY, max_retries=0)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "legacy"}], seed=5)
    recorded = reply.choices[0].message.content
    setup_project(
        pytester,
        test_migrated=f"""
            def test_legacy(openai_client):
                reply = openai_client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{{"role": "user", "content": "legacy"}}], seed=5, temperature=1.0)
                assert reply.choices[0].message.content == {recorded!r}
        """,
    )
    sim.stop()
    run(pytester).assert_outcomes(passed=1)


@pytest.mark.parametrize("mode", ["replay", "record"])
def test_a_request_outside_any_test_says_so_and_what_to_do(pytester, sim, mode):
    setup_project(
        pytester,
        test_at_import="""
            import openai

            ANSWER = openai.OpenAI(max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "asked at import"}])

            def test_x():
                assert ANSWER
        """,
    )
    result = run(pytester, f"--seedreplay={mode}", f"--seedreplay-upstream={sim.url}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*seedreplay: this request was made outside any test (at import or collection time), where no cassette "
            "is active, so it can be neither replayed nor recorded: make it inside a test or a fixture*"
        ]
    )
    assert sim.stats()["total"] == 0


def test_upstream_errors_in_record_mode_are_counted_not_hidden(pytester):
    setup_project(
        pytester,
        test_down="""
            import openai
            import pytest

            def test_upstream_down(openai_client):
                with pytest.raises(openai.InternalServerError, match="unreachable"):
                    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        """,
    )
    result = run(pytester, "--seedreplay=record", "--seedreplay-upstream=http://127.0.0.1:9/v1")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "recorded: 0 interaction(s)",
            "upstream errors: 1 request(s) got an error answer (never recorded)",
            "  first, in test_down.py::test_upstream_down: HTTP 502 the upstream http://127.0.0.1:9/v1 is unreachable*",
        ]
    )
    assert "no OpenAI requests in this run" not in result.stdout.str()


def test_a_path_cassettes_cannot_hold_fails_in_replay_saying_what_to_do(pytester):
    setup_project(
        pytester,
        test_models="""
            def test_lists_models(openai_client):
                openai_client.models.list()
        """,
    )
    result = run(pytester, "--tb=line")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*seedreplay: GET /v1/models cannot be replayed: cassettes hold only POST /v1/chat/completions, *"
            "Fake this call in the test, or let the test reach the API with @pytest.mark.seedreplay(mode='off')*"
        ]
    )
    assert "upstream errors" not in result.stdout.str()


def test_raw_http_calls_to_openai_base_url_are_recorded_and_replayed(pytester, sim):
    # Code that speaks HTTP itself (no SDK) is covered too: it reads OPENAI_BASE_URL like the SDK does.
    setup_project(
        pytester,
        test_raw=f"""
            import importlib
            import os

            import pytest

            def ask(transport, reply):
                reply.raise_for_status()
                with open("raw.txt", "a") as f:
                    f.write(transport + ": " + reply.json()["choices"][0]["message"]["content"] + "\\n")

            def body(text):
                return {{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": text}}], "seed": 4}}

            @pytest.mark.parametrize("transport", {TRANSPORTS!r})
            def test_sync(transport):
                http = importlib.import_module(transport)
                ask(transport, http.post(os.environ["OPENAI_BASE_URL"] + "/chat/completions", json=body("sync " + transport)))

            @pytest.mark.parametrize("transport", {TRANSPORTS!r})
            async def test_async(transport):
                http = importlib.import_module(transport)
                async with http.AsyncClient() as client:
                    reply = await client.post(os.environ["OPENAI_BASE_URL"] + "/chat/completions", json=body("async " + transport))
                ask(transport, reply)
        """,
    )
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=2 * len(TRANSPORTS))
    assert len(list(cassette_dir(pytester).rglob("*.yaml"))) == 2 * len(TRANSPORTS)
    sim.stop()
    run(pytester).assert_outcomes(passed=2 * len(TRANSPORTS))
    lines = (pytester.path / "raw.txt").read_text().splitlines()
    assert lines[: len(lines) // 2] == lines[len(lines) // 2 :]


def test_credentials_in_headers_and_cookies_never_reach_a_cassette(pytester):
    # An upstream that sends what OpenAI sends: cookies and the caller's organization and project.
    from aiohttp import web

    from pytest_seedreplay.proxy.serve import BackgroundServer

    seen = []

    async def chat(request):
        seen.append(dict(request.headers))
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
        }
        headers = {
            "Set-Cookie": "__cf_bm=cookie-from-upstream; path=/",
            "openai-organization": "org-upstreamsecret",
            "openai-project": "proj_upstreamsecret",
            "x-request-id": "req_1",
        }
        return web.json_response(body, headers=headers)

    def upstream_app():
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        return app

    setup_project(
        pytester,
        test_creds="""
            import openai

            def test_call():
                client = openai.OpenAI(organization="org-clientsecret", project="proj_clientsecret", max_retries=0,
                                       default_headers={"api-key": "azure-key-clientsecret", "Cookie": "session=cookie-from-client"})
                assert client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}]).choices
        """,
    )
    with BackgroundServer(upstream_app) as upstream:
        run(pytester, "--seedreplay=record", f"--seedreplay-upstream={upstream.url}/v1").assert_outcomes(passed=1)
    assert seen and seen[0]["Authorization"] == f"Bearer {TEST_KEY}"  # the upstream did get the credentials
    text = (cassette_dir(pytester) / "test_creds" / "test_call.yaml").read_text()
    assert "fine" in text and "req_1" in text
    for secret in (
        TEST_KEY,
        "clientsecret",
        "upstreamsecret",
        "cookie-from",
        "authorization",
        "cookie",
        "organization",
        "project",
    ):
        assert secret not in text.lower()
    run(pytester).assert_outcomes(passed=1)


def test_the_client_fixtures_fail_fast_and_need_no_key_in_replay(pytester, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    setup_project(
        pytester,
        test_clients="""
            def test_clients(openai_client, async_openai_client, seedreplay_proxy):
                assert openai_client.max_retries == 0 == async_openai_client.max_retries  # a miss fails at once
                assert openai_client.api_key == async_openai_client.api_key == "seedreplay-replay-needs-no-key"
                assert str(openai_client.base_url).rstrip("/") == seedreplay_proxy.url == str(async_openai_client.base_url).rstrip("/")
        """,
    )
    run(pytester).assert_outcomes(passed=1)


def test_a_cassette_that_cannot_be_written_is_a_clear_error(pytester, sim):
    setup_project(
        pytester,
        test_unwritable="""
            import pytest

            @pytest.mark.seedreplay(cassette="gone/answers")
            def test_y(openai_client):
                openai_client.embeddings.create(model="text-embedding-3-small", input="x")
        """,
    )
    cassette_dir(pytester).mkdir()
    (cassette_dir(pytester) / "gone").symlink_to(pytester.path / "no" / "such" / "dir")  # dangling: no mkdir possible
    result = run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_y*", "seedreplay did not write cassettes/gone/answers.yaml: *File exists*"]
    )
    assert "pathlib.py" not in result.stdout.str()


def test_live_without_a_recording_says_how_to_get_one(pytester, sim):
    setup_project(
        pytester,
        test_new="""
            def test_new(openai_client, seedreplay):
                openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "n"}], seed=1)
                (drift,) = seedreplay.drift
                assert not drift.recorded and not drift.drifted
        """,
    )
    result = run(pytester, "--seedreplay=live", f"--seedreplay-upstream={sim.url}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "live-compared: 0 interaction(s)",
            # the printed command repeats the run's upstream: it records from where this run compared
            f"missing: 1 interaction(s) (no recording to compare with; record them: pytest --seedreplay=record "
            f"--seedreplay-upstream {sim.url})",
        ]
    )


@pytest.mark.parametrize("mode", ["replay", "record"])
def test_mocked_http_never_trips_the_network_guard(pytester, sim, mode):
    # In an opted-in run, tests that mock httpx by hand (a MockTransport, no fixture) must keep working.
    transport = SDK_TRANSPORT
    setup_project(
        pytester,
        test_mocked=f"""
            import {transport} as http
            import openai

            def handler(request):
                return http.Response(200, json={{"object": "list", "data": [{{"id": "m", "object": "model", "created": 0, "owned_by": "me"}}]}})

            def test_sdk_on_a_mock_transport():
                client = openai.OpenAI(base_url="https://api.openai.com/v1", api_key="x", http_client=http.Client(transport=http.MockTransport(handler)))
                assert [m.id for m in client.models.list()] == ["m"]

            async def test_raw_async_mock():
                async with http.AsyncClient(transport=http.MockTransport(handler)) as client:
                    assert (await client.get("https://example.com/x")).status_code == 200
        """,
    )
    run(pytester, f"--seedreplay={mode}", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=2)


def test_record_refuses_an_openai_call_that_bypasses_the_proxy(pytester, sim):
    # It would reach the network unrecorded, and fail only later, in CI's replay: say so now.
    setup_project(
        pytester,
        test_own_url="""
            import openai

            def test_client_with_its_own_base_url():
                client = openai.OpenAI(base_url="https://api.openai.com/v1", max_retries=0)
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}])
        """,
    )
    result = run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}", "--tb=short")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*seedreplay: blocked an OpenAI call that bypasses the seedreplay proxy (record mode would not record it):",
            "*POST https://api.openai.com/v1/chat/completions",
            "*leave base_url unset so OPENAI_BASE_URL (http://127.0.0.1:*/v1) is used*",
        ]
    )
    assert not cassette_dir(pytester).exists()


def test_an_http_proxy_in_the_environment_does_not_capture_calls_to_the_plugin(pytester, sim, monkeypatch):
    # Corporate CI often sets HTTP(S)_PROXY: the SDK must still talk to the plugin's loopback proxy directly.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    setup_project(
        pytester,
        test_behind_proxy="""
            import os
            import openai

            def test_call(openai_client):
                assert "internal.example" in os.environ["NO_PROXY"]  # the user's own entries are kept
                module_style = openai.OpenAI(max_retries=0)
                for client in (openai_client, module_style):
                    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}], seed=1)
        """,
    )
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    run(pytester).assert_outcomes(passed=1)
    assert os.environ["NO_PROXY"] == "internal.example"
