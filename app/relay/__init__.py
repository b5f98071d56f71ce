"""The live relay of streaming jobs: provider deltas from the worker, through a Redis stream
per job, to the API answering the request (``events``, ``publisher``, ``subscriber``)."""
