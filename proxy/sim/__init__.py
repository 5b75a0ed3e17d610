"""seedreplay sim: an offline OpenAI-compatible upstream.

async with running_sim(SimConfig(drift="v2")) as base_url:   # ".../v1"
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test")
"""

from .app import make_sim_app, running_sim
from .config import SimConfig

__all__ = ["SimConfig", "make_sim_app", "running_sim"]
