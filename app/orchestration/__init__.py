"""Chains and ensembles: orchestrations whose steps are jobs of their own.

A chain runs its steps in order, each prompted (``templates``) with the input and the outputs
before it; an ensemble sends one request to several branches at once and a synthesizer
(``ensemble``) combines their answers. Each step is an ordinary chat job with its own
attempts, fallbacks, tokens and cost, linked to its orchestration (``steps``). Everything is
planned and costed at submission (``plans``, ``service``); after that, a step's end moves its
orchestration on in the same transaction (``hook``, ``progress``), and the reconciler sweeps
up what ended elsewhere (``sweep``). Rules are pure functions of the stored spec and the steps
(``chain``, ``ensemble``, ``decisions``); ``views`` shows it all as a job.
"""
