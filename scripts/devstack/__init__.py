"""The local stack: real Redis, the Firestore emulator, a KMS stand-in, and every
function served over HTTP. Used by ./scripts/dev, the tests and the benchmark."""
