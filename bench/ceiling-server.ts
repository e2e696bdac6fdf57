/**
 * The ceiling: a bare Fastify route returning a small JSON body, with the API's own server options
 * (logger included) and the same process layout, so the ratio to it isolates what a claim costs.
 */
import Fastify from 'fastify'
import closeWithGrace from 'close-with-grace'
import { loadConfig } from '../src/config.js'
import { serverOptions } from '../src/app.js'

const config = loadConfig(process.env, 'script')
const app = Fastify(serverOptions(config))
app.post('/v1/campaigns/:id/claims', async () => ({ hello: 'world' }))
closeWithGrace({ delay: 5_000 }, () => app.close())
await app.listen({ port: config.PORT, host: config.HOST })
