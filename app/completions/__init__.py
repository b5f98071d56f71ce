"""OpenAI's legacy text completions, answered by a chat job."""
