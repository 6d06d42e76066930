// An ordinary wallet library (ethers) on our eth_signTypedData_v4 JSON: prints its hash,
// a signature by the given key, and the address it recovers from a given signature.
// usage: node tests/js/typed-data.mjs PRIVATE_KEY SIGNATURE < typed-data.json
import { TypedDataEncoder, Wallet, verifyTypedData } from "ethers";

const [key, signature] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const payload = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const types = { ...payload.types };
delete types.EIP712Domain; // ethers derives it from the domain
const hash = TypedDataEncoder.hash(payload.domain, types, payload.message);
const signed = await new Wallet(key).signTypedData(payload.domain, types, payload.message);
const recovered = verifyTypedData(payload.domain, types, payload.message, signature);
process.stdout.write(JSON.stringify({ hash, signature: signed, recovered }));
