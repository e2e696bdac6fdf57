import { readFileSync } from 'node:fs'

/**
 * The Lua half of the users-record format (record.lua) that every script reading or writing records is
 * built with; the TypeScript half is src/redis/codec.ts.
 */
const RECORD_LUA = readFileSync(new URL('./record.lua', import.meta.url), 'utf8')

/** A script's source with record.lua's functions in front of it (Redis scripts cannot include files). */
export const withRecordLib = (lua: string): string => `${RECORD_LUA}\n${lua}`
