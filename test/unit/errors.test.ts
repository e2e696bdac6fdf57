/** Which failures are "the backend cannot serve this now" (503 BACKEND_UNAVAILABLE), and which are not. */
import t from 'tap'
import { AppError, ErrorCode, errorBody, isBackendDown } from '../../src/errors.js'
import { TimeoutError } from '../../src/timeout.js'

const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' })
const coded = (code: string) => Object.assign(new Error(code), { code })

t.test('backend trouble is recognised', async (t) => {
  const down: [string, unknown][] = [
    ['OOM', reply('OOM command not allowed when used memory > \'maxmemory\'.')],
    ['LOADING', reply('LOADING Redis is loading the dataset in memory')],
    ['READONLY', reply('READONLY You can\'t write against a read only replica.')],
    ['BUSY', reply('BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.')],
    ['MASTERDOWN', reply('MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to \'no\'.')],
    ['CLUSTERDOWN', reply('CLUSTERDOWN The cluster is down')],
    ['TRYAGAIN', reply('TRYAGAIN Multiple keys request during rehashing of slot')],
    ['MOVED (single-node client on a cluster)', reply('MOVED 11819 127.0.0.1:7002')],
    ['connection refused', coded('ECONNREFUSED')],
    ['PostgreSQL shutting down', coded('57P01')],
    ['too many connections', coded('53300')],
    ['session ended idle in a transaction', coded('25P03')],
    ['command timeout', new Error('Command timed out')],
    ['closed connection', new Error('Connection is closed.')],
    ['offline queue', new Error('Stream isn\'t writeable and enableOfflineQueue options is false')],
    ['retries exhausted', Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' })],
    ['our own deadline', new TimeoutError('redis took too long')],
    ['wrapped two levels down', new Error('outer', { cause: new Error('mid', { cause: coded('ECONNRESET') }) })],
  ]
  for (const [name, err] of down) t.ok(isBackendDown(err), name)
})

t.test('bugs and bad input are not mistaken for an outage', async (t) => {
  const notDown: [string, unknown][] = [
    ['a script error', reply('ERR user_script:12: attempt to compare nil with number')],
    ['wrong type', reply('WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['a TypeError', new TypeError('cannot read properties of undefined')],
    ['unique violation', coded('23505')],
    ['nothing', undefined],
    ['a string', 'ECONNREFUSED'],
  ]
  for (const [name, err] of notDown) t.notOk(isBackendDown(err), name)
})

t.test('error bodies carry a stable code and no stack', async (t) => {
  const e = new AppError(409, ErrorCode.ALREADY_CLAIMED, 'limit reached', { count: 1 })
  const body = e.toBody()
  t.match(body, { statusCode: 409, code: 'ALREADY_CLAIMED', error: 'Conflict', message: 'limit reached', count: 1 })
  t.notOk(JSON.stringify(body).includes('    at '), 'no stack trace')
  t.same(errorBody(599, 'X', 'm'), { statusCode: 599, code: 'X', error: 'Error', message: 'm' })
})
