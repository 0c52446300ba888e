"""The index on disk: SQLite rows (store), numbered migrations, FAISS vectors, files (atomic writes, digests), locks, check and repair."""
