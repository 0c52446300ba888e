"""The browser chat: `python ui.py` (same as `rag ui`). The app itself is rag.webapp."""

from rag.webapp import launch

if __name__ == "__main__":
    launch()
