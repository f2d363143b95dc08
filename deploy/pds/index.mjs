// Bluesky's reference PDS for a Coves instance, configured entirely by its PDS_*
// environment (see pds.env.example). Run by coves-pds.service; SIGTERM stops it cleanly.
//
// It also answers Caddy's on-demand TLS question (GET /tls-check?domain=NAME, see
// deploy/Caddyfile): a certificate is issued only for the PDS's own hostname and for
// handles of accounts it hosts, so nobody can make Caddy request certificates for
// arbitrary names under the handle domain.
import { PDS, envToCfg, envToSecrets, readEnv } from '@atproto/pds'

const env = readEnv()
const pds = await PDS.create(envToCfg(env), envToSecrets(env))

pds.app.get('/tls-check', async (req, res) => {
  const domain = typeof req.query.domain === 'string' ? req.query.domain.toLowerCase() : ''
  if (!domain) {
    return res.status(400).json({ error: 'InvalidRequest', message: 'missing domain' })
  }
  if (domain === env.hostname) return res.json({ success: true })
  const suffixes = env.serviceHandleDomains ?? []
  if (!suffixes.some((suffix) => domain.endsWith(suffix))) {
    return res.status(400).json({ error: 'InvalidRequest', message: 'not a handle domain here' })
  }
  try {
    const account = await pds.ctx.accountManager.getAccount(domain)
    if (!account) return res.status(404).json({ error: 'NotFound', message: 'no such handle' })
    return res.json({ success: true })
  } catch (err) {
    console.error(`tls-check failed: ${err?.stack ?? err}`)
    return res.status(500).json({ error: 'InternalServerError', message: 'tls-check failed' })
  }
})

await pds.start()
console.log(`pds listening on ${env.port ?? 2583} for ${env.hostname}`)

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  await pds.destroy()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
