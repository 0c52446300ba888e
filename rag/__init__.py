"""Local, private question answering over news articles, with citations.

    from rag import RAG
    rag = RAG.open("index/")
    answer = rag.ask("Where was Lavrov speaking?")
"""

from .api import RAG, IndexInfo
from .config import Settings
from .errors import (
    IndexCorruptError,
    IndexMismatchError,
    LoadError,
    ModelIntegrityError,
    ModelNotFoundError,
    RagError,
)
from .results import Answer, ArticleInfo, Citation, FileFailure, Hit, IngestReport

__all__ = [
    "RAG",
    "Answer",
    "ArticleInfo",
    "Citation",
    "FileFailure",
    "Hit",
    "IndexCorruptError",
    "IndexInfo",
    "IndexMismatchError",
    "IngestReport",
    "LoadError",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "RagError",
    "Settings",
]
__version__ = "0.1.0"
