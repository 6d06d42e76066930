// The npm `siwe` package (with ethers) as the independent EIP-4361 implementation our
// flexledger.api.siwe is held to, both ways. One JSON request on stdin, one JSON answer on stdout:
//   {"sign": {"key": "0x..", "fields": {...SiweMessage fields...}}} -> {"message", "signature"}
//   {"verify": {"message", "signature", "domain", "nonce"}} -> {"success", "error", "fields"}
import siwe from "siwe";
import { Wallet } from "ethers";

const { SiweMessage } = siwe;
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));

if (request.sign) {
  const wallet = new Wallet(request.sign.key);
  const message = new SiweMessage({ ...request.sign.fields, address: wallet.address }).prepareMessage();
  const signature = await wallet.signMessage(message);
  process.stdout.write(JSON.stringify({ message, signature }));
} else {
  const { message, signature, domain, nonce } = request.verify;
  let parsed;
  try {
    parsed = new SiweMessage(message);
  } catch (error) {
    process.stdout.write(JSON.stringify({ success: false, error: String(error) }));
    process.exit(0);
  }
  const result = await parsed.verify({ signature, domain, nonce }, { suppressExceptions: true });
  process.stdout.write(JSON.stringify({
    success: result.success,
    error: result.error ? String(result.error.type) : null,
    fields: { domain: parsed.domain, address: parsed.address, uri: parsed.uri, chainId: parsed.chainId,
      nonce: parsed.nonce, issuedAt: parsed.issuedAt, statement: parsed.statement ?? null },
  }));
}
