// `kwaainet dht run` end to end. Usage: node --import ./polyfill.mjs dht_run.mjs <kwaainet>
// Checks: stdout carries only full listen addresses (/ip4/../tcp/N/p2p/<id>), a js peer can
// dial and ping one of them, the identity file is created and reused (same peer id on
// restart), --initial-peers dials the given peer, and SIGTERM closes the connection cleanly
// (js sees it go) with exit code 0.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtempSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { check, deadline, jsNode } from './harness.mjs'

deadline(60)
const [kwaainet] = process.argv.slice(2)
const identity = join(mkdtempSync(join(tmpdir(), 'kwaai-dht-')), 'identity.key')

function startDht (args) {
  const child = spawn(kwaainet, ['dht', 'run', '--host-maddr', '/ip4/127.0.0.1/tcp/0', '--identity', identity, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = []
  let wake = null
  createInterface({ input: child.stdout }).on('line', (l) => { lines.push(l); if (wake) wake() })
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })))
  return {
    child,
    lines,
    exited,
    async firstLine () {
      for (let i = 0; i < 200 && lines.length === 0; i++) await new Promise((resolve) => { wake = resolve; setTimeout(resolve, 50) })
      return lines[0]
    }
  }
}

let ok = false
const js = await jsNode()
try {
  const a = startDht([])
  const line = await a.firstLine()
  check(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+$/.test(line ?? ''), `listen address line: ${line}`)
  check(existsSync(identity), 'identity file created')
  const id = line.split('/p2p/')[1]
  const conn = await js.dial(multiaddr(line), { signal: AbortSignal.timeout(10000) })
  const rtt = await js.services.ping.ping(multiaddr(line), { signal: AbortSignal.timeout(10000) })
  check(typeof rtt === 'number', 'js dials and pings kwaainet dht run')
  const closed = new Promise((resolve) => js.addEventListener('connection:close', resolve, { once: true }))
  a.child.kill('SIGTERM')
  const ex = await a.exited
  check(ex.code === 0, `exit code after SIGTERM: ${JSON.stringify(ex)}`)
  await Promise.race([closed, new Promise((resolve, reject) => setTimeout(() => reject(new Error('js never saw the close')), 5000))])
  check(conn.status !== 'open', 'js saw the connection close')
  check(a.lines.every((l) => /^\/ip4\/.+\/tcp\/\d+\/p2p\/\w+$/.test(l)), `stdout holds only addresses: ${JSON.stringify(a.lines)}`)

  // Restart with the same identity and js as the initial peer.
  const b = startDht(['--initial-peers', js.getMultiaddrs()[0].toString()])
  const line2 = await b.firstLine()
  check(line2?.split('/p2p/')[1] === id, 'same peer id from the saved identity')
  let dialedBack = false
  for (let i = 0; i < 100 && !dialedBack; i++) {
    dialedBack = js.getConnections().some((c) => c.remotePeer.toString() === id && c.status === 'open')
    if (!dialedBack) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  check(dialedBack, 'kwaainet dialed its --initial-peers')
  b.child.kill('SIGINT')
  const ex2 = await b.exited
  check(ex2.code === 0, 'exit code 0 after SIGINT')
  ok = true
} catch (err) {
  console.error(err)
}
await js.stop()
process.exit(ok ? 0 : 1)
