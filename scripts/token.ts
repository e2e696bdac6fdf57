/** npm run token -- <userId>: a user JWT signed with JWT_SECRET, for trying the API and for scripts. */
import { intOption, parseCli, UsageError } from '../src/cli.js'

const { values, positionals } = parseCli({
  command: 'npm run -s token --',
  positionals: [{ name: '<userId>', description: 'the user id, carried in the token\'s `sub`', required: true }],
  summary: 'Prints an HS256 JWT for <userId> signed with JWT_SECRET (with iss/aud from JWT_ISSUER/JWT_AUDIENCE ' +
    'when set) and nothing else on stdout, so `$(npm run -s token -- alice)` works in a shell.',
  options: {
    ttl: { type: 'string', value: 'SECONDS', description: 'lifetime; the token carries exp = now + SECONDS ' +
      '(default 3600)' },
  },
  exitCodes: [[0, 'token printed'], [1, 'configuration error (JWT_SECRET not set or invalid)'], [2, 'bad arguments']],
  env: ['JWT_SECRET', 'JWT_ISSUER', 'JWT_AUDIENCE'],
}, process.argv.slice(2), (v, pos) => {
  intOption('ttl', v.ttl, 3600, 1)
  // The API accepts any printable id up to 256 characters (src/auth.ts).
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (!/^[^\x00-\x1f\x7f]{1,256}$/.test(pos[0]!)) throw new UsageError('<userId> must be 1..256 printable characters')
})

const [{ createSigner }, { ConfigError, loadConfig }] = await Promise.all([import('fast-jwt'),
  import('../src/config.js')])
try {
  const config = loadConfig(process.env, 'script')
  if (!config.JWT_SECRET) throw new ConfigError('invalid configuration:\n  JWT_SECRET: required to sign a token ' +
    '(the API\'s secret; npm run dev prints its development value)')
  const sign = createSigner({
    key: config.JWT_SECRET,
    algorithm: 'HS256',
    expiresIn: intOption('ttl', values.ttl, 3600, 1) * 1000,
    ...(config.JWT_ISSUER ? { iss: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE ? { aud: config.JWT_AUDIENCE } : {}),
  })
  process.stdout.write(`${sign({ sub: positionals[0] })}\n`)
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `token failed: ${(err as Error).message}`)
  process.exit(1)
}
