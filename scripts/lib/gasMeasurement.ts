/**
 * What the gas scripts (`npm run bench`, `scripts/traceFirstOpen.ts`) measure with: a deterministic block
 * clock and the exact gas of the engine's health view.
 */
import { ethers, network } from "hardhat";
import type { MarginEngine } from "../../typechain-types";

/**
 * Mines every transaction one second after the previous block (unless the bench set the time itself),
 * whatever the wall clock says. With wall-clock block times a transaction shares its second with the one
 * before it or not, by chance, and some writes happen once per timestamp (a market's funding update);
 * an option's time to expiry, and with it the Black-Scholes arithmetic, depended on how long the setup
 * took. The same operation cost up to ~8,000 gas more or less from one run to the next.
 */
export function steadyClock(): void {
  const provider = network.provider;
  const request = provider.request.bind(provider);
  let timeSet = false;
  const intercept = async (method: string, params?: unknown[]): Promise<unknown> => {
    if (method === "evm_setNextBlockTimestamp") timeSet = true;
    if (["eth_sendTransaction", "eth_sendRawTransaction", "evm_mine", "hardhat_mine"].includes(method)) {
      if (!timeSet) {
        const latest = (await request({ method: "eth_getBlockByNumber", params: ["latest", false] })) as {
          timestamp: string;
        };
        await request({ method: "evm_setNextBlockTimestamp", params: [Number(latest.timestamp) + 1] });
      }
      timeSet = false;
    }
    return request({ method, params });
  };
  provider.request = ({ method, params }) => intercept(method, params as unknown[] | undefined);
  provider.send = (method, params) => intercept(method, params);
}

/**
 * The smallest gas limit at which `engine.health(accountId)` succeeds: what eth_estimateGas means,
 * searched to the unit. Hardhat's own estimate stops its search within a tolerance, and the same view
 * read up to ~35,000 gas apart from one run to the next.
 */
export async function healthGas(engine: MarginEngine, accountId: bigint): Promise<number> {
  const call = {
    to: await engine.getAddress(),
    data: engine.interface.encodeFunctionData("health", [accountId]),
  };
  let enough = Number(await ethers.provider.estimateGas(call));
  await ethers.provider.call({ ...call, gasLimit: enough }); // throws if the estimate were too low
  let tooLittle = 21_000;
  while (enough - tooLittle > 1) {
    const gasLimit = Math.floor((enough + tooLittle) / 2);
    try {
      await ethers.provider.call({ ...call, gasLimit });
      enough = gasLimit;
    } catch {
      tooLittle = gasLimit;
    }
  }
  return enough;
}
