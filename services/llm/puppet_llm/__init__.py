"""LlmService: every model call, composed true to the persona."""
