"""What an article is and how it is cut: the Article record and its cleaning, chunks and sentences, MinHash near-copy signatures."""
