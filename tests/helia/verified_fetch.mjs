// Fetch with @helia/verified-fetch from one `ipkg serve`, used both as the
// trustless gateway and as the delegated router, and nothing else: a Helia
// without libp2p (no bootstrap peers, no DHT), whose only router and block
// broker are the URL given. Used by tests/serve_http.rs.
//
//   HELIA_DIR=<npm prefix> node verified_fetch.mjs URL RESOURCE OUT [RESOURCE OUT]...
//
// Each RESOURCE (`ipfs://…`, `ipns://…`) is fetched and verified by the
// client, and its bytes written to OUT. Exits non-zero on any failure.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

// verified-fetch 8 targets Node 22; Debian's Node 20 lacks this one builtin
// (the undici it needs is pinned to 7 in .ci/run for the same reason).
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const dir = process.env.HELIA_DIR
if (!dir) throw new Error('HELIA_DIR is not set')
const load = (pkg, file = 'dist/src/index.js') =>
  import(pathToFileURL(join(dir, 'node_modules', pkg, file)).href)

const [url, ...pairs] = process.argv.slice(2)
const u = new URL(url)
if (!['127.0.0.1', '[::1]', 'localhost'].includes(u.hostname)) {
  throw new Error(`refusing a non-loopback URL: ${url}`)
}

const { createHeliaLight } = await load('helia')
const { withHTTP } = await load('@helia/http')
const { createVerifiedFetchWithHelia } = await load('@helia/verified-fetch')

const helia = withHTTP(createHeliaLight({}), {
  delegatedRouters: [url],
  recursiveGateways: [url],
  allowInsecure: true,
  allowLocal: true
})
await helia.start()
const fetch = await createVerifiedFetchWithHelia(helia)
let failed = false
for (let i = 0; i + 1 < pairs.length; i += 2) {
  const [resource, out] = [pairs[i], pairs[i + 1]]
  const signal = AbortSignal.timeout(30000)
  try {
    const resp = await fetch(resource, { signal })
    const body = new Uint8Array(await resp.arrayBuffer())
    console.log(`${resource}: ${resp.status} ${body.length} bytes`)
    if (!resp.ok) {
      failed = true
      console.error(new TextDecoder().decode(body.slice(0, 500)))
      continue
    }
    await writeFile(out, body)
  } catch (e) {
    failed = true
    console.error(`${resource}: ${e.stack ?? e}`)
  }
}
await fetch.stop()
await helia.stop()
process.exit(failed ? 1 : 0)
