"""Local, private question answering over news articles, with citations.

    from rag import RAG
    rag = RAG.open("index/")
    answer = rag.ask("Where was Lavrov speaking?")
"""

from .api import RAG, IndexInfo
from .check import CheckReport, check_index, repair_index
from .config import Settings
from .errors import (
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    LoadError,
    ModelIntegrityError,
    ModelNotFoundError,
    RagError,
    RemoteModelError,
)
from .results import Answer, ArticleInfo, Citation, FileFailure, Hit, IngestReport

__all__ = [
    "RAG",
    "Answer",
    "ArticleInfo",
    "CheckReport",
    "Citation",
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
