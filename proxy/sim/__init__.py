"""seedreplay sim: an offline OpenAI-compatible upstream."""
