// js-libp2p <-> kwaainet over TCP + Noise + Yamux. Usage:
//   node --import ./polyfill.mjs js_cpp.mjs <libp2p_interop_node> js-dials|cpp-dials
// Either side dials; then, on that one connection: ping both ways, a 1 MiB echo in both
// directions, and identify contents checked on both sides.
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { ECHO, check, deadline, jsEcho, jsNode, startCpp } from './harness.mjs'

deadline(60)
const [binary, mode] = process.argv.slice(2)
const cpp = await startCpp(binary)
const js = await jsNode()
const identified = new Map()
js.addEventListener('peer:identify', (evt) => identified.set(evt.detail.peerId.toString(), evt.detail))
const cppId = peerIdFromString(cpp.peerId)
const cppAddr = multiaddr(cpp.addrs[0])
const jsId = js.peerId.toString()
let ok = false
try {
  if (mode === 'js-dials') {
    await js.dial(cppAddr, { signal: AbortSignal.timeout(10000) })
  } else {
    const r = await cpp.cmd('dial ' + js.getMultiaddrs()[0].toString())
    check(r.ok && r.peer === jsId, 'kwaainet dials js and authenticates its peer id')
    check(r.early_muxer === true, 'muxer selected through Noise early data')
  }
  check(js.getConnections(cppId).length === 1, 'one connection between the nodes')

  // Ping both ways.
  const rtt = await js.services.ping.ping(cppId, { signal: AbortSignal.timeout(10000) })
  check(typeof rtt === 'number', `js pings kwaainet (${rtt} ms)`)
  const p = await cpp.cmd('ping ' + jsId)
  check(p.ok, 'kwaainet pings js')

  // 1 MiB echo both ways (crosses the 256 KiB window several times).
  const e1 = await jsEcho(js, cppId, 1 << 20)
  check(e1.n === 1 << 20 && e1.bad === 0, `js -> kwaainet echo: ${e1.n} bytes, ${e1.bad} mismatches`)
  const e2 = await cpp.cmd(`echo ${jsId} ${1 << 20}`)
  check(e2.ok && e2.bytes === 1 << 20 && e2.mismatches === 0, 'kwaainet -> js echo of 1 MiB')

  // identify as js saw us.
  for (let i = 0; i < 100 && !identified.has(cpp.peerId); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const id = identified.get(cpp.peerId)
  check(id !== undefined, 'js identified kwaainet')
  for (const proto of [ECHO, '/ipfs/id/1.0.0', '/ipfs/id/push/1.0.0', '/ipfs/ping/1.0.0', '/ipfs/kad/1.0.0']) {
    check(id.protocols.includes(proto), `kwaainet announces ${proto}`)
  }
  check(id.agentVersion.startsWith('kwaainet/'), `agent ${id.agentVersion}`)
  check(id.protocolVersion === 'ipfs/0.1.0', `protocol version ${id.protocolVersion}`)
  const listen = id.listenAddrs.map(String)
  check(listen.includes(cppAddr.decapsulateCode(421).toString()), `listen addrs ${listen}`)
  const announcedKey = id.publicKey instanceof Uint8Array ? id.publicKey : publicKeyToProtobuf(id.publicKey)
  check(Buffer.from(announcedKey).equals(Buffer.from(publicKeyToProtobuf(cppId.publicKey))), 'identify public key is the peer id key')
  check(id.observedAddr === undefined || String(id.observedAddr).startsWith('/ip4/127.0.0.1/tcp/'), `observed addr ${id.observedAddr}`)

  // identify as we saw js.
  const mine = await cpp.cmd('identify ' + jsId)
  check(mine.ok, 'kwaainet identifies js')
  check(mine.agent.startsWith('js-libp2p/'), `js agent ${mine.agent}`)
  for (const proto of [ECHO, '/ipfs/id/1.0.0', '/ipfs/ping/1.0.0']) check(mine.protocols.includes(proto), `js announces ${proto}`)
  check(mine.keyMatchesPeer, 'js identify key matches its peer id')
  check(mine.addrs.includes(js.getMultiaddrs()[0].decapsulateCode(421).toString()), `js listen addrs ${mine.addrs}`)
  check(mine.observed.startsWith('/ip4/127.0.0.1/tcp/'), `js observed us at ${mine.observed}`)

  // Still one connection: nothing was torn down by js's connection monitor along the way.
  check(js.getConnections(cppId).length === 1, 'connection still up')
  ok = true
} catch (err) {
  console.error(err)
}
const code = await cpp.quit()
console.error('cpp exit code ' + code)
await js.stop()
process.exit(ok && code === 0 ? 0 : 1)
