"""One source of truth for names, defaults and parameter lists shared by every feature."""

from __future__ import annotations

from typing import Any

# The key scheme. Bump when the canonical form changes, so stores can be migrated.
KEY_VERSION = "v1"

# Entry record format version (the shape of a stored entry, not of the key).
ENTRY_FORMAT = 1

# Endpoints whose answers are cached. Everything else under /v1 is passed through.
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
RESPONSES = "/v1/responses"
MESSAGES = "/v1/messages"  # Anthropic's Messages API (its SDK posts to {base_url}/v1/messages)
CACHEABLE_ENDPOINTS = (CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES, MESSAGES)
# The endpoints of Anthropic's API: answered by the Anthropic upstream, errors in Anthropic's shape.
ANTHROPIC_ENDPOINTS = (MESSAGES,)
# Request headers that change an Anthropic answer's shape (API version, beta features): in the key.
ANTHROPIC_KEYED_HEADERS = ("anthropic-version", "anthropic-beta")
# The header every Anthropic client sends: a request carrying it (GET /v1/models...) goes to Anthropic.
ANTHROPIC_VERSION_HEADER = "anthropic-version"

# Request parameters that cannot change the output, on every endpoint.
IGNORED_PARAMS = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
    }
)

# Per-endpoint extras that cannot change the output. Embeddings: float and base64 are
# the same vectors, and a stored answer converts between them.
IGNORED_PARAMS_BY_ENDPOINT = {
    "/v1/embeddings": frozenset({"encoding_format"}),
}

# Documented defaults: a parameter given at its default keys the same as leaving it out. Only
# defaults the API documents (OpenAPI spec / SDK docstrings) belong here: a wrong one serves a
# recording for a request that would have answered differently.
_SAMPLING_DEFAULTS = {
    "temperature": 1,
    "top_p": 1,
    "n": 1,
    "frequency_penalty": 0,
    "presence_penalty": 0,
}
DEFAULTS_BY_ENDPOINT: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        **_SAMPLING_DEFAULTS,
        "logprobs": False,
        "parallel_tool_calls": True,
        "modalities": ["text"],  # SDK: "generating text, which is the default: ["text"]"
        "verbosity": "medium",  # SDK: "The default is `medium`."
    },
    # Legacy completions: `logprobs` is an int there (0 still returns the sampled token's logprob),
    # so it has no bool default; `max_tokens` defaults to 16 in the spec.
    "/v1/completions": {**_SAMPLING_DEFAULTS, "echo": False, "best_of": 1, "max_tokens": 16},
    "/v1/responses": {"temperature": 1, "top_p": 1, "parallel_tool_calls": True, "truncation": "disabled"},
    "/v1/embeddings": {},
    # Anthropic's documented defaults (API reference: temperature "Defaults to 1.0"; tool_choice
    # {"type": "auto"} when tools are given is handled in key.py, with the `disable_parallel_tool_use`
    # default false).
    "/v1/messages": {"temperature": 1},
}

# Defaults that depend on another field being given: param -> (that field, default when it is
# given, default when it is not). SDK: "`none` is the default when no tools are present. `auto`
# is the default if tools are present." (and the same for the deprecated functions/function_call).
CONDITIONAL_DEFAULTS_BY_ENDPOINT: dict[str, dict[str, tuple[str, Any, Any]]] = {
    "/v1/chat/completions": {
        "tool_choice": ("tools", "auto", "none"),
        "function_call": ("functions", "auto", "none"),
    },
}

# The content type of JSON requests and answers. The SSE ones belong to the wire format
# (shapes/sse.py); this copy of CONTENT_TYPE_SSE serves store/cassette.py until its import moves
# there (core cannot re-export from shapes: shapes builds on core). test_shapes_sse checks they agree.
CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_SSE = "text/event-stream"

# HTTP headers of the proxy.
HEADER_MODE = "X-Seedreplay-Mode"
HEADER_CACHE = "X-Seedreplay-Cache"
HEADER_KEY = "X-Seedreplay-Key"
HEADER_TOKEN = "X-Seedreplay-Token"
HEADER_STORE_ERROR = "X-Seedreplay-Store-Error"  # on an answer the store refused to keep
# On every answer served from a recording: the tokens (input + output) and dollars it saved.
HEADER_TOKENS_SAVED = "X-Seedreplay-Tokens-Saved"
HEADER_COST_SAVED = "X-Seedreplay-Cost-Saved"
# Every header of ours starts so (lower-cased): never forwarded upstream.
OUR_HEADER_PREFIX = "x-seedreplay-"

# Cache status values carried in X-Seedreplay-Cache.
CACHE_HIT = "hit"
CACHE_MISS = "miss"
CACHE_BYPASS = "bypass"
CACHE_REFRESH = "refresh"

# The `type` of the errors the proxy makes itself (never confused with the upstream's own errors).
ERROR_TYPE_MISS = "seedreplay_miss"
ERROR_TYPE_PROXY = "seedreplay_error"

# The modes (the proxy's and the plugin's) are policy.Mode's, spelled there once.
DRIFT_POLICIES = ("warn", "fail", "fail-on-change")  # live mode: what a drifted answer does to its test
FAIL_ON_CHANGE = "fail-on-change"  # fail only when the behaviour changed, warn when reworded
DEFAULT_DRIFT_POLICY = "warn"

# Response headers worth keeping with an entry. Everything else (cookies, auth, hop-by-hop) is dropped.
KEPT_RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "openai-model",
        "openai-processing-ms",
        "openai-version",
        "x-request-id",
        "request-id",  # Anthropic's
    }
)


# Request headers that identify the caller, in the order --isolate-by-auth looks for one (`api-key`:
# Azure OpenAI's). Forwarded upstream, never stored or logged.
CREDENTIAL_HEADERS = ("authorization", "api-key", "x-api-key")

# The SDKs (Python and Node) number their retries of a request in this header (0: the first try).
HEADER_RETRY_COUNT = "x-stainless-retry-count"

# Query parameters a recorded URL keeps: Azure's API version says what the answer was recorded
# under. Others are dropped (a gateway may take a credential in the query); all are forwarded.
KEPT_QUERY_PARAMS = ("api-version",)

# Environment and defaults.
ENV_UPSTREAM = "SEEDREPLAY_UPSTREAM"
ENV_MODE = "SEEDREPLAY_MODE"  # the pytest plugin's session-wide opt-in, as --seedreplay=MODE
ENV_STORE = "SEEDREPLAY_STORE"
ENV_TOKEN = "SEEDREPLAY_TOKEN"  # the proxy's --token, kept out of `ps`
ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_API_KEY = "OPENAI_API_KEY"
# Set next to OPENAI_BASE_URL so a nested pytest (pytester, a subprocess) never chains into our proxy.
ENV_PLUGIN_PROXY = "SEEDREPLAY_PLUGIN_PROXY"
# What the Azure OpenAI clients read (AzureOpenAI(), AsyncAzureOpenAI(); no OPENAI_BASE_URL for them).
ENV_AZURE_ENDPOINT = "AZURE_OPENAI_ENDPOINT"
ENV_AZURE_API_KEY = "AZURE_OPENAI_API_KEY"
DEFAULT_UPSTREAM = "https://api.openai.com/v1"
# Anthropic's API, for /v1/messages and every request carrying `anthropic-version` (--anthropic-upstream).
ENV_ANTHROPIC_UPSTREAM = "SEEDREPLAY_ANTHROPIC_UPSTREAM"
DEFAULT_ANTHROPIC_UPSTREAM = "https://api.anthropic.com"
# What the Anthropic clients read (Anthropic(), AsyncAnthropic()): the root, without /v1.
ENV_ANTHROPIC_BASE_URL = "ANTHROPIC_BASE_URL"
ENV_ANTHROPIC_API_KEY = "ANTHROPIC_API_KEY"
# The upstream word that starts the built-in simulator in-process (proxy, plugin, use_cassette).
SIM_UPSTREAM = "sim"
# Where cassettes and entries say an answer of that simulator came from: a URL (a cassette's uri must
# be one to replay), the same whatever port the simulator took, and one that never resolves (.invalid).
SIM_RECORDED_URL = "http://seedreplay-sim.invalid/v1"
DEFAULT_CACHE_DIR = ".seedreplay/cache"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PROXY_PORT = 8787
DEFAULT_SIM_PORT = 8788
# The thread a background server (the plugin's proxy) runs in: the plugin's network guard lets it connect.
SERVER_THREAD = "seedreplay-server"
# The modules whose connection pools the plugin's network guard hooks (the transports under httpx and
# httpx2, which the OpenAI SDK sends through): until a test has one imported, there is nothing to guard.
GUARDED_TRANSPORTS = ("httpcore", "httpcore2")
DEFAULT_UPSTREAM_TIMEOUT = 600.0  # seconds the upstream may stay silent
DEFAULT_MAX_BODY = 32 * 1024 * 1024
# A client's request must arrive in time (ConnectionLimits): its head within DEFAULT_HEADER_TIMEOUT
# seconds of its first byte, and its body with no gap longer than DEFAULT_BODY_TIMEOUT; at most
# DEFAULT_MAX_CONNECTIONS connections at once (fewer when ulimit -n is lower).
DEFAULT_HEADER_TIMEOUT = 15.0
DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_MAX_CONNECTIONS = 1024
# The largest upstream answer the proxy records (`max_answer`): a bigger one is relayed as it comes,
# not recorded, and says so. Far above any real answer (a 2,048-input embeddings batch is ~35 MB).
DEFAULT_MAX_ANSWER = 128 * 1024 * 1024
# Past this many bytes an answer is parsed, assembled and scanned for secrets in a thread, not on
# the loop every client shares (tens of MB take seconds).
LARGE_ANSWER = 1024 * 1024
# The proxy keeps recently served hits in memory as ready-to-send bytes, up to this many bytes
# (`--memory-cache`, 0 turns it off). A copy is served for at most MEMORY_CACHE_MAX_AGE seconds
# after it was read from the store, so a change another process makes to the store (another
# proxy, `seedreplay cache prune/clear/import`) is seen within that time.
DEFAULT_MEMORY_CACHE = 64 * 1024 * 1024
MEMORY_CACHE_MAX_AGE = 1.0
# Store writes the proxy has answered but not yet landed (--write-backlog, --write-backlog-entries):
# past either bound a new miss's answer waits for room, at most DEFAULT_WRITE_WAIT seconds (then it
# goes out unrecorded, saying so). --durable writes before answering instead.
DEFAULT_WRITE_BACKLOG = 64 * 1024 * 1024
DEFAULT_WRITE_BACKLOG_ENTRIES = 1024
DEFAULT_WRITE_WAIT = 60.0
DEFAULT_CASSETTE_DIR = "cassettes"
FINETUNE_MANIFEST = "finetunes.json"  # the fine-tune manifest, kept in the cassette dir
# A team cache (issue 12). Proxies sharing a store make one upstream call for identical concurrent
# misses: the first takes a lock in the store that expires after DEFAULT_LOCK_EXPIRY seconds unless
# its holder renews it, so a proxy that dies mid-call is replaced by then.
DEFAULT_LOCK_EXPIRY = 10.0
# After the store fails to answer, the proxy stops asking it and probes it this often until it answers.
STORE_PROBE_SECONDS = 1.0
ENV_PRICES = "SEEDREPLAY_PRICES"
MANIFEST_PATH = "cassettes/finetunes.json"

# The similar-questions tier (`seedreplay proxy --similar`): its X-Seedreplay-Cache value, the headers
# that say which recording answered and how close it was, and how often it looks for other
# processes' recordings (at least this often; a store that takes long to list is listed less often).
CACHE_SIMILAR = "similar"
SIMILAR_DEFAULT_THRESHOLD = 0.7  # why this value: see similar/index.py
HEADER_SIMILAR_KEY = "X-Seedreplay-Similar-Key"
HEADER_SIMILAR_SCORE = "X-Seedreplay-Similar-Score"
SIMILAR_SYNC_SECONDS = 2.0
