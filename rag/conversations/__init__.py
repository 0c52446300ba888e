"""Saved conversations: each user's chats (questions, the checked answers with their sources,
thumbs up or down) in a SQLite file beside the index, exported as Markdown or as an evaluation set.

    from rag import RAG
    rag = RAG.open("index/")
    chats = rag.conversations.of("editor")      # None or "": the local user (no login)
    for summary in chats.list():                # newest first
        print(summary.title, summary.turns)
"""

from rag.conversations.export import articles_jsonl, evaluation_articles, evaluation_jsonl, evaluation_records, markdown
from rag.conversations.records import Conversation, ConversationSummary, Feedback, Turn
from rag.conversations.store import LOCAL_USER, ConversationNotFound, Conversations, ConversationStore

__all__ = [
    "LOCAL_USER",
    "Conversation",
    "ConversationNotFound",
    "ConversationStore",
    "ConversationSummary",
    "Conversations",
    "Feedback",
    "Turn",
    "articles_jsonl",
    "evaluation_articles",
    "evaluation_jsonl",
    "evaluation_records",
    "markdown",
]
