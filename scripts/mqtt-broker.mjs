// The embedded MQTT broker (aedes, MQTT 3.1 and 3.1.1) that `flexledger broker start` runs.
// Usage: node scripts/mqtt-broker.mjs [--host 127.0.0.1] [--port 1883] [--persist DIR] [--users FILE]
//        (--port 0 = any free port)
// Prints one JSON line {"ready": true, "port": N} on stdout once listening; stops on SIGTERM/SIGINT.
//
// --persist DIR keeps, in a LevelDB database in DIR, the sessions of clean_session=false clients:
// their subscriptions and the QoS 1/2 messages accepted for them and not yet acknowledged, so a
// restart (a crash or SIGKILL included) loses none. Without it everything lives in memory.
// aedes sends a QoS 1 PUBACK *before* it queues the message for the persistent sessions, so a kill in
// between would lose a message its publisher has already forgotten (the edge agent deletes a reading
// on PUBACK). Hence a journal in the same database: a QoS 1 message is written there before aedes
// acknowledges it and crossed out once queued; a start queues again whatever the journal holds. A
// crash may thus queue a message twice (at least once): the oracle keeps a reading once.
// Writes reach the operating system before the PUBACK leaves, not the disk: what was accepted
// survives the broker's process dying, not a power cut of the machine.
// Order matters as well: aedes forwards a message to a connected client only if its counter is above
// the last one forwarded to that client (its `dedupe`, meant for clusters), and drops it otherwise;
// it stays queued, unseen until the client reconnects. LevelDB finishes concurrent writes in any
// order, so the writes a message waits for on its way (journal, queue, retained) are made to finish
// in the order they were asked for. (A QoS 0 message waits for none of them and may still overtake
// a QoS 1 one to a client subscribed to both; flexledger publishes at QoS 1 only.)
import { createHash, timingSafeEqual } from 'node:crypto'
import { mkdirSync, readFileSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { parseArgs } from 'node:util'
import { Aedes } from 'aedes'
import levelPersistence from 'aedes-persistence-level'
import { Level } from 'level'

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '1883' },
    persist: { type: 'string' },
    users: { type: 'string' },
  },
})

const fail = (message) => {
  process.stderr.write(`mqtt-broker: ${message}\n`)
  process.exit(1)
}

// Runs each call at once but settles the calls in the order they were made.
function inOrder (fn) {
  let last = Promise.resolve()
  return (...args) => {
    const pending = fn(...args)
    const settled = last.then(() => pending)
    last = settled.catch(() => {})
    return settled
  }
}

// --users FILE: who may connect (flexledger.broker writes the file, private to its owner): each
// user has a password (stored as sha256(salt || password); the passwords are random 256-bit tokens
// flexledger generates, so a slow hash would add nothing) and the topic filters it may publish to
// and subscribe to. A client must present its user's name as its client id: a persistent session
// (the oracle's, an edge agent's) then belongs to whoever holds that user's password, and a stranger
// can neither take it over nor wipe it with a clean CONNECT. `<user>:<anything>` is the user's too
// (`config --check` connects as `<oracle>:check`, never under the oracle's own session). No anonymous
// client is admitted.
// The file is read again when it changes, so a user added with `flexledger broker user add` counts
// at its next CONNECT.
let users = null
let usersStamp = ''
function currentUsers () {
  const stat = statSync(values.users)
  const stamp = `${stat.mtimeMs}:${stat.size}`
  if (stamp !== usersStamp) {
    users = JSON.parse(readFileSync(values.users, 'utf8')).users ?? {}
    usersStamp = stamp
  }
  return users
}

// Whether every topic the `requested` filter (or topic) can match is matched by the `allowed` filter.
function covers (allowed, requested) {
  const a = allowed.split('/')
  const r = requested.split('/')
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '#') return true
    if (i >= r.length || r[i] === '#') return false
    if (a[i] === '+') continue
    if (a[i] !== r[i]) return false
  }
  return a.length === r.length
}

function mayUse (client, kind, topic) {
  const user = client?.flexledgerUser
  return Boolean(user) && (user[kind] ?? []).some((allowed) => covers(allowed, topic))
}

const authOpts = {}
if (values.users) {
  try {
    currentUsers()
  } catch (err) {
    fail(`cannot read the broker's users in ${values.users}: ${err.message}`)
  }
  authOpts.authenticate = (client, username, password, done) => {
    let known
    try {
      known = username ? currentUsers()[username] : undefined
    } catch (err) {
      process.stderr.write(`mqtt-broker: cannot read ${values.users}: ${err.message}\n`)
    }
    let ok = false
    if (known && password && (client.id === username || client.id.startsWith(`${username}:`))) {
      const digest = createHash('sha256').update(Buffer.from(known.salt, 'hex')).update(password).digest()
      const expected = Buffer.from(known.hash, 'hex')
      ok = expected.length === digest.length && timingSafeEqual(expected, digest)
    }
    if (!ok) {
      process.stderr.write(`mqtt-broker: refused client id ${JSON.stringify(client.id)} (user ${JSON.stringify(username ?? null)})\n`)
      const err = new Error('bad user name or password')
      err.returnCode = 4
      return done(err, false)
    }
    client.flexledgerUser = known
    done(null, true)
  }
  // A filter the user may not read is answered with a refusal (SUBACK 0x80), not a disconnection.
  authOpts.authorizeSubscribe = (client, sub, done) => done(null, mayUse(client, 'subscribe', sub.topic) ? sub : null)
}
const allowedToPublish = (client, packet) => !values.users || client === null || mayUse(client, 'publish', packet.topic)

let db = null
let journal = null
const journaled = new WeakMap() // the publisher's packet -> its journal key, until aedes has queued it
let nextEntry = 0

const opts = { ...authOpts }
if (values.users) {
  opts.authorizePublish = (client, packet, callback) => {
    if (packet.topic.startsWith('$SYS/')) return callback(new Error('$SYS/ topic is reserved'))
    callback(allowedToPublish(client, packet) ? null : new Error(`not allowed to publish to ${packet.topic}`))
  }
}
if (values.persist) {
  try {
    mkdirSync(values.persist, { recursive: true })
    db = new Level(values.persist)
    await db.open()
  } catch (err) {
    fail(`cannot open the broker's state in ${values.persist}: ${err.cause?.message ?? err.message}`)
  }
  journal = db.sublevel('flexledger-journal', { valueEncoding: 'json' })
  const record = inOrder((key, entry) => journal.put(key, entry))
  const persistence = levelPersistence(db)
  persistence.outgoingEnqueueCombi = inOrder(persistence.outgoingEnqueueCombi.bind(persistence))
  persistence.storeRetained = inOrder(persistence.storeRetained.bind(persistence))
  opts.persistence = persistence
  opts.authorizePublish = (client, packet, callback) => {
    if (packet.topic.startsWith('$SYS/')) return callback(new Error('$SYS/ topic is reserved')) // as aedes does by default
    if (!allowedToPublish(client, packet)) return callback(new Error(`not allowed to publish to ${packet.topic}`))
    if (packet.qos !== 1) return callback(null) // QoS 2 aedes stores before it answers; QoS 0 promises nothing
    const key = (nextEntry++).toString(16).padStart(12, '0') // hex keys sort in the order accepted
    journaled.set(packet, key)
    const entry = { topic: packet.topic, payload: Buffer.from(packet.payload).toString('base64'), retain: Boolean(packet.retain) }
    record(key, entry).then(() => callback(null), callback)
  }
  opts.published = (packet, _client, callback) => {
    const key = journaled.get(packet)
    if (key === undefined) return callback(null)
    journaled.delete(packet)
    journal.del(key).then(() => callback(null), callback)
  }
}

const broker = await Aedes.createBroker(opts)

if (journal) {
  // Before any client connects: the sessions' subscriptions are loaded, so this queues for them.
  for await (const [key, entry] of journal.iterator()) {
    const packet = { cmd: 'publish', topic: entry.topic, payload: Buffer.from(entry.payload, 'base64'), qos: 1, retain: entry.retain }
    await new Promise((resolve, reject) => broker.publish(packet, (err) => (err ? reject(err) : resolve())))
    await journal.del(key)
  }
}

const server = createServer(broker.handle)

server.on('error', (err) => fail(err.message))
server.listen(Number(values.port), values.host, () => {
  process.stdout.write(JSON.stringify({ ready: true, port: server.address().port }) + '\n')
})

const stop = () => broker.close(() => server.close(() => {
  if (!db) process.exit(0)
  db.close().finally(() => process.exit(0))
}))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
