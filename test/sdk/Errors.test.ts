import { expect } from "chai";
import { ethers } from "hardhat";
import { VoidSigner } from "ethers";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  XMarginError,
  createClient,
  decodeError,
  decodeRevertData,
  isXMarginError,
  makeXMarginError,
  openPosition,
  withdraw,
} from "../../sdk/src";
import { MarginMode, deploySystem, openAccount, wad } from "../shared/system";
import { deploymentOf, sdkClient } from "../shared/sdk";

const USDC = 10n ** 6n;

async function fixture() {
  const sys = await deploySystem();
  const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  const client = await sdkClient(sys, sys.alice);
  return { sys, accountId, client };
}

describe("SDK errors", function () {
  it("decodes a reverted withdraw into InsufficientMargin with typed args and a readable message", async function () {
    const { sys, accountId, client } = await loadFixture(fixture);
    await openPosition(client, { accountId, marketId: sys.markets.ETH, size: wad("10") });
    // Same second as the trade: no funding, so equity_IM = 10,000 − 9,000 − 15.075 fee − 10·15 premium
    // = 834.925 USD and IM = 10·3000·0.10006 + 0.002·30,000 = 3,061.8 USD.
    await time.setNextBlockTimestamp(await time.latest());
    let caught: unknown;
    try {
      await withdraw(client, { accountId, token: "USDC", amount: 9_000n * USDC });
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(XMarginError);
    if (!isXMarginError(caught, "InsufficientMargin")) return expect.fail("not InsufficientMargin");
    expect(caught.name).to.equal("InsufficientMargin");
    expect(caught.signature).to.equal("InsufficientMargin(uint256,int256,uint256)");
    expect(caught.args).to.deep.equal({
      accountId,
      equityInitial: wad("834.925"),
      initialRequirement: wad("3061.8"),
    });
    expect(caught.message).to.equal("equity 834.93 USD is below the initial requirement 3,061.80 USD");
    // The original error stays reachable.
    expect(caught.cause).to.be.instanceOf(Error);
  });

  it("names tokens in amounts it has seen (InsufficientBalance)", async function () {
    const { accountId, client } = await loadFixture(fixture);
    const e = await withdraw(client, { accountId, token: "USDC", amount: 20_000n * USDC }).catch(
      (x: unknown) => x,
    );
    if (!isXMarginError(e, "InsufficientBalance")) return expect.fail(String(e));
    expect(e.message).to.equal(
      `account ${accountId} holds 10,000.000000 USDC, less than the 20,000.000000 USDC requested`,
    );
  });

  it("leaves an unknown custom error raw: decodeError returns undefined and the error is untouched", async function () {
    // FeedBroken() is declared by a test mock only: the SDK's ABIs do not know it.
    const feed = await ethers.deployContract("ConfigurableAggregatorMock", [8]);
    await feed.setBroken(true);
    const raw = await feed.latestRoundData().catch((x: unknown) => x);
    expect(raw).to.be.instanceOf(Error);
    expect(decodeError(raw)).to.equal(undefined);
    expect((raw as { data?: string }).data).to.equal(feed.interface.getError("FeedBroken")?.selector);
    expect(decodeRevertData("0xdeadbeef")).to.equal(undefined);
  });

  it("leaves Solidity's built-in Error(string) and Panic(uint256) raw: no protocol error has those names (row 497)", function () {
    const coder = ethers.AbiCoder.defaultAbiCoder();
    const error =
      ethers.id("Error(string)").slice(0, 10) + coder.encode(["string"], ["Pausable: paused"]).slice(2);
    const panic = ethers.id("Panic(uint256)").slice(0, 10) + coder.encode(["uint256"], [0x11]).slice(2);
    expect(decodeRevertData(error)).to.equal(undefined);
    expect(decodeRevertData(panic)).to.equal(undefined);
  });

  it("rethrows a failure that is not a revert unchanged from an action", async function () {
    const { sys, accountId } = await loadFixture(fixture);
    // A signer that cannot sign, as a read-only wallet connection.
    const runner = new VoidSigner(sys.alice.address, ethers.provider);
    const client = createClient({ runner, deployment: await deploymentOf(sys) });
    const e = await withdraw(client, { accountId, token: "USDC", amount: USDC }).catch((x: unknown) => x);
    expect(e).to.not.be.instanceOf(XMarginError);
    expect((e as { code?: string }).code).to.equal("UNSUPPORTED_OPERATION");
  });

  it("builds the error the chain would raise, for previews", function () {
    const e = makeXMarginError("PaymentAboveLimit", [1_500_000n, 1_000_000n], { quoteDecimals: 6 });
    expect(e.message).to.equal("the payment 1.50 USD is above the limit 1.00 USD");
    expect(decodeRevertData(e.data)?.args).to.deep.equal({ payment: 1_500_000n, maxPayment: 1_000_000n });
    // Without a formatter, the arguments are listed.
    expect(makeXMarginError("MarketAlreadyRegistered", [ethers.ZeroAddress]).message).to.equal(
      `MarketAlreadyRegistered(market: ${ethers.ZeroAddress})`,
    );
  });
});
