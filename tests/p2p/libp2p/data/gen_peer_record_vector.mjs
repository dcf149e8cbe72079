// Regenerates the signed peer record vector of test_peer_record.cpp with js-libp2p
// (@libp2p/peer-record 9.0.16). NM = a node_modules folder with the js-libp2p packages
// installed (e.g. the interop peer's): NM=/path/node_modules node gen_peer_record_vector.mjs
const NM = process.env.NM
if (!Promise.withResolvers) {
  Promise.withResolvers = () => { let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b }); return { promise, resolve, reject } }
}
const { PeerRecord, RecordEnvelope } = await import(NM + '/@libp2p/peer-record/dist/src/index.js')
const { generateKeyPairFromSeed } = await import(NM + '/@libp2p/crypto/dist/src/keys/index.js')
const { peerIdFromPrivateKey } = await import(NM + '/@libp2p/peer-id/dist/src/index.js')
const { multiaddr } = await import(NM + '/@multiformats/multiaddr/dist/src/index.js')
const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(7))
const peerId = peerIdFromPrivateKey(key)
const record = new PeerRecord({ peerId, seqNumber: 1700000000000n,
  multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/4001'), multiaddr('/dns4/example.com/tcp/443')] })
const env = await RecordEnvelope.seal(record, key)
console.log(JSON.stringify({ peerId: peerId.toString(), record: Buffer.from(record.marshal()).toString('hex'),
  envelope: Buffer.from(env.marshal()).toString('hex') }))
