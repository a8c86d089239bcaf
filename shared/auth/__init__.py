"""Who is calling: Firebase ID tokens (firebase_tokens), Cloud Scheduler OIDC tokens
(scheduler_oidc), both turned into a shared.domain.Principal (principal).

Modules are imported by name, so the sweep (scheduler tokens only) does not load
firebase-admin.
"""
