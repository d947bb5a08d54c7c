"""How RunPod (or a local host) calls the worker."""
