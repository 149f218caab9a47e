/**
 * A deterministic block clock for the gas scripts (`npm run bench`, `scripts/traceFirstOpen.ts`).
 */
import { network } from "hardhat";

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
