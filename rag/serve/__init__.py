"""Serving: the OpenAI-compatible HTTP API, the Gradio web app, and what both share (rendering, uploads, admission, request checks, host guard)."""
