// Resolve did:ethr DIDs with the npm reference resolver (ethr-did-resolver + did-resolver)
// against our ERC-1056 registry, and print the resolution result as JSON.
//
// usage: node tests/js/resolve-ethr.mjs DID RPC_URL REGISTRY_ADDRESS CHAIN_ID [MORE_DIDS...]
// One DID prints one result object; more print an array of results in the same order (one
// Node start for many DIDs keeps the tests fast).
import { Resolver } from "did-resolver";
import { getResolver } from "ethr-did-resolver";

const [did, rpcUrl, registry, chainId, ...more] = process.argv.slice(2);
if (!did || !rpcUrl || !registry || !chainId) {
  process.stderr.write("usage: resolve-ethr.mjs DID RPC_URL REGISTRY_ADDRESS CHAIN_ID [MORE_DIDS...]\n");
  process.exit(2);
}
const network = { name: "0x" + BigInt(chainId).toString(16), chainId: BigInt(chainId), rpcUrl, registry };
const resolver = new Resolver(getResolver({ networks: [network] }), { cache: false });
const results = [];
for (const one of [did, ...more]) {
  results.push(await resolver.resolve(one));
}
process.stdout.write(JSON.stringify(more.length ? results : results[0]));
