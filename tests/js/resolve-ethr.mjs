// Resolve a did:ethr with the npm reference resolver (ethr-did-resolver + did-resolver),
// against our registry on a local chain, and print the resolution as JSON.
// usage: node tests/js/resolve-ethr.mjs DID RPC_URL REGISTRY_ADDRESS CHAIN_ID
import { Resolver } from "did-resolver";
import { getResolver } from "ethr-did-resolver";

const [did, rpcUrl, registry, chainId] = process.argv.slice(2);
const resolver = new Resolver(
  getResolver({ networks: [{ name: "0x" + BigInt(chainId).toString(16), chainId: BigInt(chainId), rpcUrl, registry }] })
);
const result = await resolver.resolve(did);
process.stdout.write(JSON.stringify(result));
