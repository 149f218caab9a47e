/**
 * Wall-clock jitter for the test suite (`npm run test:jitter`; not loaded otherwise). Every block a test
 * did not pin with `evm_setNextBlockTimestamp` comes a random 0..STRESS_JITTER extra seconds later, as
 * if the machine had stalled that long between two steps. A test whose outcome moves with those seconds
 * (funding, option decay, interest, an auction's discount) fails here before it flakes in CI: review
 * round 38 found five such tests after CI failed on one. STRESS_SEED makes a run reproducible.
 */
import { extendEnvironment } from "hardhat/config";
import { mulberry32 } from "./random";

interface RequestArguments {
  method: string;
  params?: unknown[];
}
interface Eip1193 {
  request(args: RequestArguments): Promise<unknown>;
}
/** Hardhat's lazy provider adapter: the jitter wraps what it initialises, under every later wrapper. */
interface LazyProvider {
  _getOrInitProvider(): Promise<Eip1193>;
}

const maxSeconds = Number(process.env.STRESS_JITTER ?? "0");
const seed = Number(process.env.STRESS_SEED ?? Date.now() % 1_000_000) >>> 0;
const random = mulberry32(seed);

if (maxSeconds > 0) {
  console.log(`[jitter] 0..${maxSeconds} s before each unpinned block, seed ${seed}`);
  extendEnvironment((hre) => {
    const adapter = hre.network.provider as unknown as LazyProvider;
    const init = adapter._getOrInitProvider.bind(adapter);
    let jittered: (Eip1193 & { send(method: string, params?: unknown[]): Promise<unknown> }) | undefined;
    let pinned = false;
    let automine = true;
    adapter._getOrInitProvider = async () => {
      if (jittered) return jittered;
      const inner = await init();
      const request = async (args: RequestArguments): Promise<unknown> => {
        const { method } = args;
        if (method === "evm_setNextBlockTimestamp") {
          const result = await inner.request(args);
          pinned = true;
          return result;
        }
        if (method === "evm_setAutomine") automine = Boolean(args.params?.[0]);
        if (method === "evm_revert") pinned = false;
        const mines =
          method === "evm_mine" ||
          method === "hardhat_mine" ||
          (automine && (method === "eth_sendTransaction" || method === "eth_sendRawTransaction"));
        if (!mines) return inner.request(args);
        const extra = pinned ? 0 : Math.floor(random() * (maxSeconds + 1));
        if (extra > 0) await inner.request({ method: "evm_increaseTime", params: [extra] });
        try {
          return await inner.request(args);
        } finally {
          pinned = false;
        }
      };
      jittered = { request, send: (method, params) => request({ method, params: params ?? [] }) };
      return jittered;
    };
  });
}
