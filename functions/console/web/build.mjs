// Builds the console into dist/: one content-hashed JS file, one content-hashed CSS file,
// index.html naming them, and manifest.json (every file with its sha256 and gzip size).
//
//   npm run build            (node build.mjs)
//
// The output is byte-identical from one build to the next (no timestamps, no absolute
// paths, no source maps, a fixed gzip level): the console function can be rebuilt and
// compared. The build fails when the gzipped JavaScript passes the budget of issue 17.

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import * as esbuild from "esbuild";

const ROOT = dirname(fileURLToPath(import.meta.url));
const SRC = join(ROOT, "src");
const DIST = join(ROOT, "dist");
const ASSETS = join(DIST, "assets");
const JS_GZIP_BUDGET = 300 * 1024; // bytes of gzipped JavaScript (issue 17: under 300 KB)

// @firebase/util imports `./postinstall.mjs`, a file its npm postinstall script writes from
// the build machine's environment (FIREBASE_WEBAPP_CONFIG, FIREBASE_AUTH_EMULATOR_HOST...).
// The console takes its Firebase settings from config.json at run time, never from the build
// machine, and a build must not depend on whether install scripts ran: the import resolves
// to a fixed module that supplies no defaults.
const noBuildTimeFirebaseDefaults = {
  name: "no-build-time-firebase-defaults",
  setup(build) {
    build.onResolve({ filter: /^\.\/postinstall\.mjs$/ }, (args) =>
      /[\\/]@firebase[\\/]util[\\/]/.test(args.importer)
        ? { path: "firebase-postinstall-defaults", namespace: "console-stub" }
        : undefined);
    build.onLoad({ filter: /.*/, namespace: "console-stub" }, () => ({
      contents: "export const getDefaultsFromPostinstall = () => undefined;",
      loader: "js",
    }));
  },
};

function gzipSize(bytes) {
  return gzipSync(bytes, { level: 9 }).length;
}

function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

async function bundle() {
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: ["src/main.js", "src/styles.css"],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2020",
    minify: true,
    sourcemap: false,
    legalComments: "none",
    charset: "utf8",
    entryNames: "[name]-[hash]",
    outdir: ASSETS,
    metafile: true,
    logLevel: "warning",
    plugins: [noBuildTimeFirebaseDefaults],
  });
  const outputs = Object.entries(result.metafile.outputs);
  const named = (entry) => {
    const found = outputs.find(([, meta]) => meta.entryPoint === entry);
    if (!found) throw new Error(`esbuild wrote nothing for ${entry}`);
    return relative(DIST, join(ROOT, found[0])).split("\\").join("/");
  };
  return { js: named("src/main.js"), css: named("src/styles.css") };
}

function writeIndex({ js, css }) {
  const template = readFileSync(join(SRC, "index.html"), "utf8");
  for (const placeholder of ["%MAIN_JS%", "%STYLES_CSS%"]) {
    if (!template.includes(placeholder)) throw new Error(`src/index.html lacks ${placeholder}`);
  }
  // Relative URLs only: the console is served under a base path (/console/ locally).
  const html = template.replaceAll("%MAIN_JS%", js).replaceAll("%STYLES_CSS%", css);
  writeFileSync(join(DIST, "index.html"), html);
}

function writeManifest(files) {
  const entries = files.map((path) => {
    const bytes = readFileSync(join(DIST, path));
    return { path, bytes: bytes.length, gzip_bytes: gzipSize(bytes), sha256: sha256(bytes) };
  });
  const manifest = { files: entries };
  writeFileSync(join(DIST, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  return entries;
}

async function main() {
  rmSync(DIST, { recursive: true, force: true }); // no stale hashed files from a build before
  mkdirSync(ASSETS, { recursive: true });
  const assets = await bundle();
  writeIndex(assets);
  const entries = writeManifest(["index.html", assets.js, assets.css]);
  for (const entry of entries) {
    console.log(`${entry.path.padEnd(34)} ${String(entry.bytes).padStart(8)} B  ${String(entry.gzip_bytes).padStart(7)} B gzip`);
  }
  const js = entries.find((entry) => entry.path === assets.js);
  if (js.gzip_bytes > JS_GZIP_BUDGET) {
    throw new Error(`${basename(assets.js)} is ${js.gzip_bytes} B gzipped: over the ${JS_GZIP_BUDGET} B budget`);
  }
}

main().catch((error) => {
  console.error(error.message ?? error);
  process.exit(1);
});
