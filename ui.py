"""The browser chat: `python ui.py [--host H] [--port N] [--index DIR] [--api]`, the same as
`rag ui` with the same options (this runs that command). The app itself is rag.serve.web."""

import sys

from rag.cli import main

if __name__ == "__main__":
    sys.argv[1:1] = ["ui"]
    main()
