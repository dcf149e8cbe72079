// A scripted go-libp2p-like dialer built on the shared from-scratch wire code (rawwire.mjs),
// reproducing go behaviours js-libp2p does not:
//  * security: /tls/1.0.0 proposed before /noise (go >= v0.33), expecting `na` then Noise;
//  * a SYN sent as WINDOW_UPDATE with delta 0;
//  * identify opened first on the new connection, every other stream held back until it
//    completes; the responder must FIN within 1 s (go reads identify until EOF);
//  * lazy stream open: SYN, multistream header + protocol + data, and FIN in one burst;
//  * keep-alive: yamux pings every KEEPALIVE ms, each answered within DEADLINE ms. go uses
//    30 s / 10 s; the ctest case passes --keepalive-ms 300 so it takes about a second;
//  * go-yamux v5: RST carrying an error code in `length`, GoAway with an unknown code.
// Usage: node --import ./polyfill.mjs golike.mjs <libp2p_interop_node> [--keepalive-ms N]
//        [--deadline-ms N] [--pings N]
import net from 'node:net'
import { makeIdentity, Reader, noiseHandshake, mssMsg, Y, yhdr, readUvarint, pbDecode, base58btc } from './rawwire.mjs'
import { ECHO, check, deadline, startCpp } from './harness.mjs'

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? Number(process.argv[i + 1]) : d }
const KEEPALIVE = arg('--keepalive-ms', 30000)
const DEADLINE = arg('--deadline-ms', 10000)
const PINGS = arg('--pings', 3)
deadline(Math.ceil((PINGS * (KEEPALIVE + DEADLINE)) / 1000) + 30)

const [binary] = process.argv.slice(2)
const cpp = await startCpp(binary)
const [, , host, , port] = cpp.addrs[0].split('/')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

let ok = false
try {
  const sock = net.connect(Number(port), host)
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  const rd = new Reader(sock)
  const readMss = async () => { const len = (await rd.exactly(1))[0]; return (await rd.exactly(len)).subarray(0, len - 1).toString() }

  // Security negotiation, TLS first.
  sock.write(Buffer.concat([mssMsg('/multistream/1.0.0'), mssMsg('/tls/1.0.0')]))
  check(await readMss() === '/multistream/1.0.0', 'multistream header')
  check(await readMss() === 'na', '/tls/1.0.0 refused with na')
  sock.write(mssMsg('/noise'))
  check(await readMss() === '/noise', '/noise accepted after na')
  const id = makeIdentity()
  const noise = await noiseHandshake(sock, rd, id, true, ['/yamux/1.0.0'])
  check(base58btc(noise.remote.peerId) === cpp.peerId, 'Noise authenticated the expected peer id')
  check(noise.remote.muxers?.includes('/yamux/1.0.0'), 'responder offered yamux in early data')

  // Yamux client state driven by a frame pump.
  const streams = new Map()
  const pings = new Map()
  let goaway = null; let closed = false; let buf = Buffer.alloc(0)
  const stream = (sid) => { if (!streams.has(sid)) streams.set(sid, { data: Buffer.alloc(0), fin: false, rst: false, finAt: 0 }); return streams.get(sid) }
  const send = (...frames) => noise.send(Buffer.concat(frames))
  ;(async () => {
    try {
      for (;;) {
        buf = Buffer.concat([buf, await noise.recv()])
        while (buf.length >= 12) {
          const type = buf[1]; const flags = buf.readUInt16BE(2); const sid = buf.readUInt32BE(4); const len = buf.readUInt32BE(8)
          const body = type === Y.DATA ? len : 0
          if (buf.length < 12 + body) break
          const data = buf.subarray(12, 12 + body); buf = buf.subarray(12 + body)
          if (type === Y.PING) {
            if (flags & Y.SYN) send(yhdr(Y.PING, Y.ACK, 0, len))
            else if (pings.has(len)) { pings.get(len)(); pings.delete(len) }
          } else if (type === Y.GO_AWAY) {
            goaway = len
          } else {
            if ((flags & Y.SYN) && sid % 2 === 0) { send(yhdr(Y.WINDOW_UPDATE, Y.RST, sid, 0)); continue } // inbound streams: refused
            const s = stream(sid)
            if (data.length) { s.data = Buffer.concat([s.data, data]); send(yhdr(Y.WINDOW_UPDATE, 0, sid, data.length)) }
            if (flags & Y.FIN) { s.fin = true; s.finAt = Date.now() }
            if (flags & Y.RST) s.rst = true
          }
        }
      }
    } catch { closed = true }
  })()
  const waitFor = async (cond, ms) => { const end = Date.now() + ms; while (!cond() && Date.now() < end) await sleep(5); return cond() }
  const ping = async (value, ms) => {
    const answered = new Promise((resolve) => pings.set(value, resolve))
    send(yhdr(Y.PING, Y.SYN, 0, value))
    return Promise.race([answered.then(() => true), sleep(ms).then(() => false)])
  }

  // Identify first; nothing else is opened until it finished.
  const t0 = Date.now()
  send(yhdr(Y.WINDOW_UPDATE, Y.SYN, 1, 0)) // SYN as a zero-delta window update
  const idReq = Buffer.concat([mssMsg('/multistream/1.0.0'), mssMsg('/ipfs/id/1.0.0')])
  send(yhdr(Y.DATA, 0, 1, idReq.length), idReq)
  check(await waitFor(() => stream(1).fin || stream(1).rst, 1000), 'identify answered and FIN sent within 1 s')
  check(!stream(1).rst, 'identify stream not reset')
  console.error(`identify finished after ${stream(1).finAt - t0} ms`)
  const idData = stream(1).data
  const hdrLen = idReq.length
  check(idData.subarray(0, hdrLen).equals(idReq), 'identify negotiation echoed')
  const [msgLen, l] = readUvarint(idData, hdrLen)
  const fields = pbDecode(idData.subarray(hdrLen + l, hdrLen + l + msgLen))
  const protocols = fields.filter(([n]) => n === 3).map(([, v]) => v.toString())
  const agent = fields.find(([n]) => n === 6)?.[1].toString()
  check(agent?.startsWith('kwaainet/'), `agent ${agent}`)
  check(protocols.includes(ECHO) && protocols.includes('/ipfs/ping/1.0.0'), `protocols ${protocols}`)
  send(yhdr(Y.WINDOW_UPDATE, Y.FIN, 1, 0))

  // Lazy open: SYN + header + protocol + data + FIN in one burst, before any reply.
  const payload = Buffer.alloc(100000).map((_, i) => (i * 7) & 0xff)
  const lazy = Buffer.concat([mssMsg('/multistream/1.0.0'), mssMsg(ECHO), payload])
  send(yhdr(Y.WINDOW_UPDATE, Y.SYN, 3, 0), yhdr(Y.DATA, 0, 3, lazy.length), lazy, yhdr(Y.WINDOW_UPDATE, Y.FIN, 3, 0))
  check(await waitFor(() => stream(3).fin || stream(3).rst, 5000), 'lazy echo stream finished')
  const neg = Buffer.concat([mssMsg('/multistream/1.0.0'), mssMsg(ECHO)])
  check(stream(3).data.subarray(0, neg.length).equals(neg), 'lazy negotiation echoed')
  check(stream(3).data.subarray(neg.length).equals(payload), `lazy data echoed (${stream(3).data.length - neg.length} bytes)`)

  // Keep-alive pings at go's cadence (interval configurable for the test).
  for (let i = 0; i < PINGS; i++) {
    await sleep(KEEPALIVE)
    check(await ping(1000 + i, DEADLINE), `keep-alive ping ${i + 1} answered within ${DEADLINE} ms`)
  }
  check(!closed && goaway === null, 'connection kept alive')

  // go-yamux v5: RST with an error code in length must not be read as a window delta.
  send(yhdr(Y.WINDOW_UPDATE, Y.SYN, 5, 0))
  send(yhdr(Y.WINDOW_UPDATE, Y.RST, 5, 0x55))
  check(await ping(77, DEADLINE), 'session alive after RST carrying an error code')

  // GoAway with an unknown code: the node ends the session and keeps serving others.
  send(yhdr(Y.GO_AWAY, 0, 0, 0x42))
  check(await waitFor(() => closed, 3000), 'node closed the session after GoAway(0x42)')
  const conns = await cpp.cmd('conns')
  check(conns.ok && !conns.peers.includes(base58btc(id.peerId)), 'connection gone from the node')
  sock.destroy()
  ok = true
} catch (err) {
  console.error(err)
}
const code = await cpp.quit()
process.exit(ok && code === 0 ? 0 : 1)
