"""Developer tools: local services, the demo, screenshots."""
