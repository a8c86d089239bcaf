// Starts the in-memory Firestore emulator (@firestore-emulator/server) on loopback.
// The package's own start() binds 0.0.0.0; we bind 127.0.0.1 (port 0 = any free one)
// and print {"port": N} once ready. Exits on SIGTERM/SIGINT or when stdin closes,
// so it dies with the process that started it.
const { FirestoreServer, FirestoreStateCollection, FirestoreStateDocument } = require("@firestore-emulator/server");
const { ServerCredentials } = require("@grpc/grpc-js");

// The package adds each document through immer's produce(), whose auto-freeze walks the
// collection's whole document map: every write costs O(collection size) (measured: 1.5 ms
// per commit at 500 documents, 23 ms at 20,000). Real Firestore has no such cost, so left
// alone the emulator, not the service, would dominate every local figure. Same behaviour,
// added in place: a frozen map is copied once, then grows without copies.
FirestoreStateCollection.prototype.getDocument = function getDocument(name) {
  let document = this.documents[name];
  if (!document) {
    if (Object.isFrozen(this.documents)) this.documents = { ...this.documents };
    document = new FirestoreStateDocument(this.emitter, this.database, this, name, {}, {});
    this.documents[name] = document;
  }
  return document;
};

const requested = Number(process.argv[2] || 0);
const emulator = new FirestoreServer();
emulator.server.bindAsync(`127.0.0.1:${requested}`, ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`firestore emulator: ${err.message}`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({ port }) + "\n");
});

const shutdown = () => {
  emulator.stop();
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.stdin.on("end", shutdown);
process.stdin.resume();
