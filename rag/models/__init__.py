"""The models: the registry of bundled names and files, the embedder, llama.cpp and a remote OpenAI-compatible server."""
