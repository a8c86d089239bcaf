"""Rate limits: GCRA per client IP, per user and per license (acquire).

shared_limits.py (Redis, every instance) and local_limits.py (in process, no backend)
are imported by name, so a function that needs only one does not load the other's
libraries.
"""
