"""OpenAI's chat completions endpoint, answered on the same request by a durable job."""
