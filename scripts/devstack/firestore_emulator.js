// Starts the in-memory Firestore emulator (@firestore-emulator/server) on loopback.
// The package's own start() binds 0.0.0.0; we bind 127.0.0.1 (port 0 = any free one)
// and print {"port": N} once ready. Exits on SIGTERM/SIGINT or when stdin closes,
// so it dies with the process that started it.
const { FirestoreServer } = require("@firestore-emulator/server");
const { ServerCredentials } = require("@grpc/grpc-js");

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
