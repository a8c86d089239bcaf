"""The license server's one library, bundled into every function.

Layout (one concern per package):
    errors      the exception tree every layer raises and `http` turns into JSON
    config      one typed settings object, read once from the environment
    clock, ids  injectable time and identifier sources
    seats       Redis Lua scripts: who holds a seat right now
    store       Firestore repositories: the durable record
    tokens      lease tokens signed under a Cloud KMS root (delegated signing), JWKS
    auth        Firebase ID tokens -> Principal
    licensing   the use cases (acquire, heartbeat, release, validate)
    http        request parsing and limits, error envelope, structured request log
    runtime     wires the adapters together once per process
"""
