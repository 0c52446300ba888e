"""The browser chat: `python ui.py [--host H] [--port N] [--index DIR] [--api]`, the same as
`rag ui` with the same options (this runs that command on its own). The app is rag.serve.web."""

from rag.cli import run, ui_cmd

if __name__ == "__main__":
    run(ui_cmd)
