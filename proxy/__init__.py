"""The aiohttp servers: the caching proxy and the offline simulator."""
