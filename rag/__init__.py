"""Local, private question answering over news articles, with citations.

    from rag import RAG
    rag = RAG.open("index/")
    answer = rag.ask("Where was Lavrov speaking?")
"""

from rag.api import RAG, IndexInfo
from rag.errors import (
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    LoadError,
    ModelIntegrityError,
    ModelNotFoundError,
    RagError,
    RemoteModelError,
)
from rag.index.check import CheckReport, check_index, repair_index
from rag.options import AskOptions
from rag.results import Answer, ArticleInfo, Citation, Evidence, FileFailure, Hit, IngestReport
from rag.settings import Settings

__all__ = [
    "RAG",
    "Answer",
    "AskOptions",
    "ArticleInfo",
    "CheckReport",
    "Citation",
    "Evidence",
    "FileFailure",
    "Hit",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexInfo",
    "IndexMismatchError",
    "IngestReport",
    "LoadError",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "RagError",
    "RemoteModelError",
    "Settings",
    "check_index",
    "repair_index",
]
__version__ = "0.1.0"
