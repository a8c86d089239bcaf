"""scripts/bench: throughput, latency, KMS calls and memory of the running local stack.

Modules, one job each:
    cli           flags, the order of the phases, exit codes
    stack_facts   .dev/stack.json, the stack's process tree, its gunicorn flags, RSS/CPU
    fixtures      a fresh tenant, licenses and user tokens for one run
    loadgen       runs loadgen.js (Node + undici) for one phase
    function_log  KMS certificate lines and server-side latencies in .dev/functions.log
    bare_function the no-op functions-framework function under the stack's gunicorn flags
    redis_loop    raw EVALSHA of the acquire script vs. SeatTable.acquire
    report        the plain-text table and the JSON document
"""
