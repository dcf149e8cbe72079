// Kademlia FIND_NODE between js-libp2p kad-dht and kwaainet. Usage:
//   node --import ./polyfill.mjs kad.mjs <libp2p_interop_node>
// Topology: kwaainet K and js J2 both know only js J1 (a DHT server).
//  * J2 finds K's address with a DHT query (FIND_NODE answered by J1 from what K announced).
//  * K finds J2's address with its own iterative FIND_NODE lookup through J1.
//  * J2 then asks K directly (K as FIND_NODE server) for J1.
import { peerIdFromString } from '@libp2p/peer-id'
import { check, deadline, jsNode, startCpp } from './harness.mjs'

deadline(90)
const [binary] = process.argv.slice(2)
const cpp = await startCpp(binary)
const j1 = await jsNode({ dht: true })
const j2 = await jsNode({ dht: true })
const cppId = peerIdFromString(cpp.peerId)
let ok = false
try {
  const b = await cpp.cmd('bootstrap ' + j1.getMultiaddrs()[0].toString())
  check(b.ok, 'kwaainet bootstraps from js')
  await j2.dial(j1.getMultiaddrs()[0])
  // Let J1 identify both peers and put them in its routing table.
  for (let i = 0; i < 100; i++) {
    const peers = await j1.services.dht.routingTable.size
    if (peers >= 2) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  check(j1.services.dht.routingTable.size >= 2, `J1 routing table has ${j1.services.dht.routingTable.size} peers`)

  const found = await j2.peerRouting.findPeer(cppId, { signal: AbortSignal.timeout(20000) })
  const foundAddrs = found.multiaddrs.map(String)
  check(foundAddrs.includes(cpp.addrs[0].replace(/\/p2p\/.*$/, '')), `js found kwaainet at ${foundAddrs}`)

  const mine = await cpp.cmd('findpeer ' + j2.peerId.toString())
  check(mine.ok, 'kwaainet lookup finds J2')
  const j2Addr = j2.getMultiaddrs()[0].decapsulateCode(421).toString()
  check(mine.addrs.includes(j2Addr), `kwaainet found J2 at ${mine.addrs}`)

  // kwaainet as the FIND_NODE server: J2 asks it directly.
  await j2.dial(cppId)
  for (let i = 0; i < 100 && !(await j2.services.dht.routingTable.find(cppId)); i++) await new Promise((resolve) => setTimeout(resolve, 100))
  check(await j2.services.dht.routingTable.find(cppId), 'js put kwaainet (a DHT server per identify) in its routing table')
  let served = false
  for await (const ev of j2.services.dht.getClosestPeers(j1.peerId.toMultihash().bytes, { signal: AbortSignal.timeout(20000) })) {
    if (ev.name === 'PEER_RESPONSE') console.error(`js: FIND_NODE response from ${ev.from} with ${ev.closer?.length} closer peers`)
    if (ev.name === 'PEER_RESPONSE' && ev.from.equals(cppId)) served = true
  }
  check(served, 'kwaainet answered a FIND_NODE from js')
  ok = true
} catch (err) {
  console.error(err)
}
const code = await cpp.quit()
await j1.stop()
await j2.stop()
process.exit(ok && code === 0 ? 0 : 1)
