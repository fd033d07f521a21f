"""Thread context: what the messaging platform knows of each conversation, stored in Redis."""
