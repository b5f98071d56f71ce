"""Response validators: checks a request's answer must pass (JSON Schema, RE2 pattern, length),
refused at submission if they cannot run, enforced by the worker as ``quality`` failures."""
