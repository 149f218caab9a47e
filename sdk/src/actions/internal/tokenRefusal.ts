/**
 * A token's own refusal of a movement the protocol would make, asked with a static call before anything
 * is sent (review rounds 142 and 152): a paused token (USDC's `pause()`), a blocklisted sender, receiver
 * or spender, a balance short of the amount, a `false` returned. No protocol error names these: the chain
 * reverts with the token's own error.
 */
import { type BlockTag, Interface, isError } from "ethers";
import type { XMarginClient } from "../../client";
import { decodeError, findRevertData } from "../../errors";
import { errorContext } from "./chain";

/** ERC-20's `transfer`, to ask a token whether it would send. */
const ERC20_TRANSFER = new Interface(["function transfer(address to, uint256 amount) returns (bool)"]);

/** `amount` of `token` moving from `from` to `to`, as `from` would send it (`transfer`). */
export interface TokenMovement {
  token: string;
  from: string;
  to: string;
  amount: bigint;
  /** Who sends, for the message of a `false` returned ("the vault", "the depositor"). */
  sender: string;
}

/** A call to ask statically: `data` to `to`, sent by `from`, at `blockTag` (default the latest). */
export interface StaticAsk {
  to: string;
  from: string;
  data: string;
  blockTag?: BlockTag;
}

/**
 * What a static call of `ask` returns, or the error it reverts with: a custom error the SDK knows (the
 * protocol's, OpenZeppelin's ERC-20 errors) as an XMarginError, anything else (a token's `require`
 * string, an unknown token's error) as the node gave it. A failure that is not the call's (the network)
 * is thrown.
 */
export async function askStatically(client: XMarginClient, ask: StaticAsk): Promise<string | Error> {
  try {
    return await client.provider.call({ to: ask.to, from: ask.from, data: ask.data, blockTag: ask.blockTag });
  } catch (error) {
    // A JSON-RPC provider's CALL_EXCEPTION; others (a test node's) carry the revert data elsewhere.
    if (isError(error, "CALL_EXCEPTION") || findRevertData(error) !== undefined) {
      const decoded = decodeError(error, errorContext(client));
      return decoded ?? (error as Error);
    }
    throw error;
  }
}

/**
 * The token's refusal of `movement`: a static call of `transfer(to, amount)` from `from`. A revert, or a
 * `false` returned, is the token refusing; undefined when it would send (a `true`, or no return data as
 * USDT's `transfer` gives: SafeERC20 accepts both).
 * @example
 * await tokenRefusal(client, { token, from: vault, to: owner, amount, sender: "the vault" }, blockTag);
 */
export async function tokenRefusal(
  client: XMarginClient,
  movement: TokenMovement,
  blockTag?: BlockTag,
): Promise<Error | undefined> {
  const { token, from, to, amount, sender } = movement;
  const data = ERC20_TRANSFER.encodeFunctionData("transfer", [to, amount]);
  const returned = await askStatically(client, { to: token, from, data, blockTag });
  if (returned instanceof Error) return returned;
  // SafeERC20 accepts no return data, or a true; anything else reverts `SafeERC20FailedOperation`.
  if (returned === "0x" || BigInt(returned.slice(0, 66)) === 1n) return undefined;
  return new Error(`the token ${token} returned false for ${sender}'s transfer of ${amount} to ${to}`);
}
