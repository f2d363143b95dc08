// Starts Bluesky's reference PDS or a PLC directory for Coves' tests.
//
//   node run.mjs plc   (PLC_PORT)            an in-memory PLC directory
//   node run.mjs pds   (PDS_* environment)   the reference PDS, configured from its own env vars
//
// Both listen on 127.0.0.1 only (the packages bind every interface by default).
// The process exits when its standard input closes, so a test run that dies,
// even by SIGKILL, takes these servers with it: the parent holds the only
// write end of the pipe. SIGTERM and SIGINT shut down cleanly.

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const LOOPBACK = '127.0.0.1'

// express's app.listen(port) binds every interface; pin it to loopback.
function listenOnLoopback(app) {
  const listen = app.listen.bind(app)
  app.listen = (port, ...rest) => listen(port, LOOPBACK, ...rest)
}

async function startPlc() {
  const { PlcServer, Database } = require('@did-plc/server')
  const port = Number(process.env.PLC_PORT)
  if (!Number.isInteger(port) || port <= 0) throw new Error('PLC_PORT must be a port number')
  const server = PlcServer.create({ db: Database.mock(), port })
  listenOnLoopback(server.app)
  await server.start()
  return server
}

async function startPds() {
  const { PDS, envToCfg, envToSecrets, readEnv } = await import('@atproto/pds')
  const env = readEnv()
  const pds = await PDS.create(envToCfg(env), envToSecrets(env))
  listenOnLoopback(pds.app)
  await pds.start()
  return pds
}

const kind = process.argv[2]
const starters = { plc: startPlc, pds: startPds }
if (!(kind in starters)) {
  console.error(`usage: node run.mjs plc|pds (got ${kind})`)
  process.exit(2)
}

let server
let stopping = false
async function stop(code) {
  if (stopping) return
  stopping = true
  const force = setTimeout(() => process.exit(code), 5000)
  force.unref()
  try {
    await server?.destroy()
  } catch (err) {
    console.error(`${kind}: error while stopping: ${err?.stack ?? err}`)
  }
  process.exit(code)
}

process.stdin.on('end', () => stop(0))
process.stdin.on('close', () => stop(0))
process.stdin.on('error', () => stop(0))
process.stdin.resume()
// Belt and braces: if the parent is gone (re-parented to init), stop too.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) stop(0)
}, 1000).unref()
process.on('SIGTERM', () => stop(0))
process.on('SIGINT', () => stop(0))

try {
  server = await starters[kind]()
  // The harness waits for this line (with this pid) before it trusts the port.
  console.log(`coves-test-${kind}: listening on ${LOOPBACK} (pid ${process.pid})`)
} catch (err) {
  console.error(`coves-test-${kind}: failed to start: ${err?.stack ?? err}`)
  process.exit(1)
}
