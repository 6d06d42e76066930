// The npm @openzeppelin/merkle-tree on a set of values: prints its root, every proof, and
// whether it accepts the proofs it is given.
// usage: node tests/js/merkle.mjs < {"encoding": [...], "values": [[...], ...], "proofs": [[...], ...]}
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const tree = StandardMerkleTree.of(input.values, input.encoding);
const proofs = input.values.map((_, i) => tree.getProof(i));
const accepted = (input.proofs || []).map((proof, i) =>
  StandardMerkleTree.verify(tree.root, input.encoding, input.values[i], proof));
process.stdout.write(JSON.stringify({ root: tree.root, proofs, accepted, dump: tree.dump() }));
