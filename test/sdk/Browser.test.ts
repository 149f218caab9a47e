import { expect } from "chai";
import { builtinModules } from "node:module";
import path from "node:path";
import { build, type Plugin } from "esbuild";

const ROOT = path.resolve(__dirname, "../..");
const ENTRY = path.join(ROOT, "sdk/src/index.ts");

/** Bundles `entry` for the browser and returns every Node built-in it imports (with its importer). */
async function nodeImports(
  entry: { file: string } | { contents: string },
): Promise<{ builtins: string[]; bytes: number }> {
  const builtins: string[] = [];
  const guard: Plugin = {
    name: "node-builtins",
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        const name = args.path.replace(/^node:/, "").split("/")[0];
        if (args.path.startsWith("node:") || builtinModules.includes(name)) {
          builtins.push(`${args.path} (imported by ${path.relative(ROOT, args.importer)})`);
          return { path: args.path, external: true };
        }
        return undefined;
      });
    },
  };
  const result = await build({
    ...("file" in entry
      ? { entryPoints: [entry.file] }
      : { stdin: { contents: entry.contents, resolveDir: ROOT, loader: "ts" as const } }),
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    write: false,
    logLevel: "silent",
    plugins: [guard],
  });
  return { builtins, bytes: result.outputFiles.reduce((n, f) => n + f.contents.length, 0) };
}

describe("SDK browser bundle", function () {
  this.timeout(120_000);

  it("bundles sdk/src/index.ts for the browser (esbuild) without any Node built-in", async function () {
    const { builtins, bytes } = await nodeImports({ file: ENTRY });
    expect(builtins).to.deep.equal([]);
    console.log(`      browser bundle: ${(bytes / 1024).toFixed(0)} KiB unminified`);
  });

  it("would fail: the same check flags a Node built-in imported next to the SDK", async function () {
    const { builtins } = await nodeImports({
      contents: `import { readFileSync } from "node:fs"; import { createClient } from "./sdk/src"; console.log(readFileSync, createClient);`,
    });
    expect(builtins).to.deep.equal(["node:fs (imported by <stdin>)"]);
  });
});
