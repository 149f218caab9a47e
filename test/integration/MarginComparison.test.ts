import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { REFERENCE_BOOKS, referenceMarginTable, type MarginRow } from "../shared/referenceBooks";

const row = (rows: MarginRow[], name: string): MarginRow => rows.find((r) => r.book.name === name)!;
const sum = (xs: bigint[]): bigint => xs.reduce((a, b) => a + b, 0n);

describe("Margin comparison of the reference books", function () {
  it("requires in isolated accounts exactly the standard requirement of the same positions", async function () {
    const rows = await loadFixture(referenceMarginTable);
    expect(rows.map((r) => r.book.name)).to.deep.equal(REFERENCE_BOOKS.map((b) => b.name));
    for (const r of rows) expect(sum(r.isolated)).to.equal(r.standard);
  });

  it("margins a single perp the same way under all three", async function () {
    const r = row(await loadFixture(referenceMarginTable), "long perp");
    // 1 ETH at 3,000: the 10% shock grows with size, 10% · (1 + 3,000 / 50,000,000) = 10.0006%, so
    // 3,000 · 0.100006 = 300.018, plus 0.2% of 3,000 = 6.
    const im = 306_018n * 10n ** 15n;
    expect([r.isolated[0], r.standard, r.portfolio]).to.deep.equal([im, im, im]);
  });

  it("needs at most 1/3 of the standard IM for the conversion and the bull call spread", async function () {
    const rows = await loadFixture(referenceMarginTable);
    for (const name of ["conversion", "bull call spread"]) {
      const r = row(rows, name);
      expect(3n * r.portfolio, name).to.be.at.most(r.standard);
    }
    // The conversion is delta-, gamma- and vega-neutral: only the contingency, 0.2% of 3 · 3,000 = 18.
    expect(row(rows, "conversion").portfolio).to.equal(18n * 10n ** 18n);
  });

  it("nets the covered call only partly: below standard, but above 1/3 of it (issue target not met)", async function () {
    const r = row(await loadFixture(referenceMarginTable), "covered call");
    // The short call leaves ~0.68 delta, adds its vega and gamma to the spot-down/vol-up corner and the
    // 5% floor of one net short contract (150): see docs/margin-comparison.md.
    expect(r.portfolio).to.be.lessThan(r.standard);
    expect(3n * r.portfolio).to.be.greaterThan(r.standard);
  });

  it("margins the covered call like the short put it equals by put–call parity", async function () {
    const rows = await loadFixture(referenceMarginTable);
    const coveredCall = row(rows, "covered call");
    const shortPut = row(rows, "short put");
    // Long perp + short 3,300 call and short 3,300 put have the same Δ (1 − N(d1) = N(−d1)), Γ and vega
    // and one net short contract each: the same grid loss and floor. They differ only by the perp's
    // 3,000 of extra gross notional: 0.2% contingency (6) and the size term of the shock (tiny).
    const difference = coveredCall.portfolio - shortPut.portfolio;
    expect(difference).to.be.greaterThan(6n * 10n ** 18n);
    expect(difference).to.be.lessThan(7n * 10n ** 18n);
  });

  it("never requires more than the standard IM", async function () {
    for (const r of await loadFixture(referenceMarginTable)) {
      expect(r.portfolio, r.book.name).to.be.at.most(r.standard);
    }
  });
});
