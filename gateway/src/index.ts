// Library surface for the all-in-one server and for tests.
export { createGateway, authEnabled, type Gateway, type GatewayDeps } from './gateway.js';
export { loadConfig, defaultConfig, helpText, optionHelp, checkOpenDoor, isLoopback, OPTIONS, type GatewayConfig, type Option } from './config.js';
export { createHandler, type Request, type Reply } from './routes.js';
export { readBlockPayload } from './pack/block-packer.js';
export { parseBlock, parseProcess, parseStream, BadRequest } from './envelope.js';
export { decodeCbor, encodeCbor, type CborValue, type Encodable } from './cbor.js';
export { xxh32 } from './lz4-frame.js';
export { jsonLogger, silentLogger, type Logger } from './log.js';
export { openDatabase, openObjectStore } from './storage.js';
export { keysCommand } from './keys-command.js';
export type { SqlClient } from './store/sql.js';
