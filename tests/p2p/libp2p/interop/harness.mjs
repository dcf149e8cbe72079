// Shared pieces of the interop scripts: spawn the C++ driver (libp2p_interop_node) and talk
// to it one JSON line at a time, build js-libp2p nodes like ../shared peer.mjs does, and
// fail loudly with a bounded overall timeout.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'

export const ECHO = '/interop/echo/1.0.0'

export function check (cond, what) {
  if (!cond) throw new Error('check failed: ' + what)
  console.error('ok: ' + what)
}

// Kills the whole run after `seconds`, so a hang is a failure, never a stuck ctest.
export function deadline (seconds) {
  const t = setTimeout(() => { console.error(`interop: no result within ${seconds} s`); process.exit(3) }, seconds * 1000)
  t.unref()
}

export async function startCpp (binary, extraArgs = []) {
  const child = spawn(binary, extraArgs, { stdio: ['pipe', 'pipe', 'inherit'] })
  const rl = createInterface({ input: child.stdout })
  const queue = []
  const waiters = []
  rl.on('line', (line) => {
    let msg
    try { msg = JSON.parse(line) } catch { console.error('cpp stdout (not json): ' + line); return }
    const w = waiters.shift()
    if (w) w(msg); else queue.push(msg)
  })
  const next = () => new Promise((resolve, reject) => {
    if (queue.length) return resolve(queue.shift())
    const t = setTimeout(() => reject(new Error('cpp node: no reply within 30 s')), 30000)
    waiters.push((m) => { clearTimeout(t); resolve(m) })
  })
  const hello = await next()
  return {
    child,
    peerId: hello.peerId,
    addrs: hello.addrs,
    async cmd (line) {
      child.stdin.write(line + '\n')
      const r = await next()
      console.error(`cpp ${line.slice(0, 80)} -> ${JSON.stringify(r).slice(0, 300)}`)
      return r
    },
    async quit () {
      const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
      child.stdin.end('quit\n')
      const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 5000))])
      if (code === 'timeout') child.kill('SIGKILL')
      return code
    }
  }
}

export async function jsNode ({ dht = false } = {}) {
  const services = { identify: identify(), ping: ping() }
  if (dht) services.dht = kadDHT({ protocol: '/ipfs/kad/1.0.0', clientMode: false, peerInfoMapper: passthroughMapper })
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services
  })
  await node.handle(ECHO, async (stream) => {
    for await (const chunk of stream) {
      if (!stream.send(chunk.subarray ? chunk.subarray() : chunk)) await new Promise((resolve) => stream.addEventListener('drain', resolve, { once: true }))
    }
    await stream.close()
  })
  return node
}

// Sends `size` patterned bytes over /interop/echo/1.0.0 and checks what comes back.
export async function jsEcho (node, target, size) {
  const s = await node.dialProtocol(target, ECHO, { signal: AbortSignal.timeout(20000) })
  const payload = new Uint8Array(size).map((_, i) => i & 0xff)
  const reading = (async () => {
    let n = 0; let bad = 0
    for await (const c of s) {
      const b = c.subarray ? c.subarray() : c
      for (let i = 0; i < b.length; i++) if (b[i] !== ((n + i) & 0xff)) bad++
      n += b.length
    }
    return { n, bad }
  })()
  for (let off = 0; off < size; off += 65536) {
    if (!s.send(payload.subarray(off, Math.min(size, off + 65536)))) await new Promise((resolve) => s.addEventListener('drain', resolve, { once: true }))
  }
  await s.close()
  return reading
}
