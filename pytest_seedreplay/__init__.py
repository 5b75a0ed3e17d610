"""seedreplay: record once, replay forever — a record/replay cache for the OpenAI API."""

__version__ = "0.1.0"
