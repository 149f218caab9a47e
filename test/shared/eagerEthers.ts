/**
 * Loaded in each mocha worker before any test file (hardhat.config.ts `mocha.require`).
 *
 * hardhat-ethers sets `hre.ethers` to Hardhat's `lazyObject`, a Proxy whose `get` trap builds
 * `new Error().stack` on every property read (a guard for web3.js's `givenProvider.js`), and that stack goes
 * through ts-node's source-map-support: one `ethers.parseUnits` took 36-200 µs, against 5 µs for the
 * function itself. Tests read `ethers.X` inside their loops (`wad`, `assetId`, `ethers.MaxUint256`): a
 * 50,000-position grid in OptionPricingEdges spent a quarter of its CPU writing stack traces. The proxy's
 * target is a plain object of the ethers library plus Hardhat's provider and signer helpers (closures over
 * `hre`, no `this`), so the Hardhat runtime environment gets a copy of it, built once: `import { ethers }
 * from "hardhat"` compiles to a read of `require("hardhat").ethers` at each use, and now reads the copy.
 */
import hre from "hardhat";

const lazy = hre.ethers;
const eager = Object.defineProperties({}, Object.getOwnPropertyDescriptors(lazy)) as typeof lazy;
hre.ethers = eager;
const globals = globalThis as unknown as { ethers?: unknown };
if (globals.ethers === lazy) globals.ethers = eager;
