/**
 * A JSON-RPC proxy on 127.0.0.1 that holds every request for a fixed time before forwarding it: a
 * local stand-in for a hosted RPC endpoint a network hop away, for the keeper-scan benchmark.
 */
import http from "node:http";
import type net from "node:net";

export interface LatencyProxy {
  url: string;
  close(): Promise<void>;
}

/** Forwards to `targetUrl` after `delayMs` per request (one round trip's worth of latency). */
export async function startLatencyProxy(targetUrl: string, delayMs: number): Promise<LatencyProxy> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      setTimeout(async () => {
        try {
          const upstream = await fetch(targetUrl, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: Buffer.concat(chunks),
          });
          res.writeHead(upstream.status, { "content-type": "application/json" }).end(await upstream.text());
        } catch {
          res.writeHead(502, { "content-type": "text/plain" }).end("latency proxy: upstream down");
        }
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}
