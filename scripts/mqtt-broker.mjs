// The embedded MQTT broker (aedes, MQTT 3.1 and 3.1.1) that `flexledger broker start` runs.
// Usage: node scripts/mqtt-broker.mjs [--host 127.0.0.1] [--port 1883]   (--port 0 = any free port)
// Prints one JSON line {"ready": true, "port": N} on stdout once listening; stops on SIGTERM/SIGINT.
import { createServer } from 'node:net'
import { parseArgs } from 'node:util'
import { Aedes } from 'aedes'

const { values } = parseArgs({
  options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '1883' } },
})
const broker = await Aedes.createBroker()
const server = createServer(broker.handle)

server.on('error', (err) => {
  process.stderr.write(`mqtt-broker: ${err.message}\n`)
  process.exit(1)
})
server.listen(Number(values.port), values.host, () => {
  process.stdout.write(JSON.stringify({ ready: true, port: server.address().port }) + '\n')
})

const stop = () => broker.close(() => server.close(() => process.exit(0)))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
