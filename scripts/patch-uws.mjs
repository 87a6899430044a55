#!/usr/bin/env node
// Patches the pinned uWebSockets.js addon (Linux x64, Node 20) against an upstream bug that drops
// fresh websockets. Runs after `npm install` (package.json "postinstall") and again, as a check,
// when `npm run dist` copies the addon. Idempotent; writes a new file, never into the installed one
// (npm may have hard-linked it).
//
// The bug (uNetworking/uWebSockets#1928, fixed upstream by PR #1929 after our pinned build):
// `res.cork(cb)` runs uWS's end-of-response logic after `cb` returns, and skips it when the socket
// was upgraded to a websocket inside `cb` by checking whether the socket's address changed. The
// upgrade reallocates the socket and glibc usually keeps the address, so the check misses it, and
// uWS reads the HTTP response's state from memory that now belongs to the websocket. When the bits
// there read as "Connection: close, response done", it shuts the new websocket down right after
// its open event: the client sees `1006` with no close frame. Our streams upgrade exactly that way
// (after an await, inside res.cork), and the cluster stream tests caught it about one CI run in
// three. A client sending `Connection: close` on its upgrade triggers it every time.
//
// The fix, in HttpResponseWrapper::res_cork<0> and <1> (plain TCP and TLS): remember
// the socket's context before the callback (in a stack slot the function leaves unused), and after
// it, when the context changed (the websocket context adopted the socket), skip the HTTP logic, as
// the address check meant to. The new code lives in the zero padding at the end of the executable
// segment, whose size in the program header grows to cover it. The original and patched SHA-256
// are pinned: any other file is left alone with a warning, never half-patched.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

const binaryName = 'uws_linux_x64_115.node';
const originalSha256 = 'f158fb441f7e2e37b3ab9a56782fe37f4c0d33b5cd32e96ee5c0120ce7db7ced';
const patchedSha256 = '3b8073bca898d6a174a950bb09ce239f0b21c43242db43737685a65caec874a8';

/** Where the installed addon lives (the package's entry is src/uws.js, the addons in binaries/). */
export const uwsBinaryPath = (fromDir = process.cwd()) => {
  const require = createRequire(join(fromDir, 'package.json'));
  return join(dirname(require.resolve('uWebSockets.js')), '..', 'binaries', binaryName);
};

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

// x86-64 instructions, as bytes.
const code = (...bytes) => Buffer.from(bytes);
const rel32 = (from, to) => {
  const bytes = Buffer.alloc(4);
  bytes.writeInt32LE(to - from);
  return bytes;
};
/** `jmp to`, placed at `at` (5 bytes). */
const jmp = (at, to) => Buffer.concat([code(0xe9), rel32(at + 5, to)]);
/** `jne to`, placed at `at` (6 bytes). */
const jne = (at, to) => Buffer.concat([code(0x0f, 0x85), rel32(at + 6, to)]);
const markCorked = code(0x4c, 0x89, 0xb8, 0x88, 0x01, 0x00, 0x00); // mov %r15,0x188(%rax)
const loadContextToRcx = code(0x49, 0x8b, 0x4f, 0x18); // mov 0x18(%r15),%rcx (r15: the socket)
const saveRcx = code(0x48, 0x89, 0x0c, 0x24); // mov %rcx,(%rsp)
const loadContextToRax = code(0x49, 0x8b, 0x47, 0x18); // mov 0x18(%r15),%rax
const compareSavedContext = code(0x48, 0x3b, 0x04, 0x24); // cmp (%rsp),%rax
const loadLoopByte = code(0x0f, 0xb6, 0x40, 0x0c); // movzbl 0xc(%rax),%eax
const nop2 = code(0x66, 0x90);
const nop3 = code(0x0f, 0x1f, 0x00);

// res_cork<0> (plain TCP) and res_cork<1> (TLS) are the same code at other addresses (in this
// segment, file offsets equal virtual addresses). Each frame has an unused 8-byte slot at (%rsp),
// which holds the saved context.
const corkFunctions = [
  {
    returnWithoutHttpLogic: 0x1071c1, // where it goes when the socket is no longer the same
    beforeCallback: 0x10720b, // markCorked, just before the callback is called
    timeoutOnFailure: 0x1072bc, // loadContextToRax + loadLoopByte: the HTTP timeout's start
    closeCheck: 0x1072e3, // loads HttpResponseData::state for the "Connection: close" check
    loadResponseState: code(0x41, 0x8b, 0x87, 0xf4, 0x00, 0x00, 0x00), // mov 0xf4(%r15),%eax
  },
  {
    returnWithoutHttpLogic: 0x103af1,
    beforeCallback: 0x103b3b,
    timeoutOnFailure: 0x103bec,
    closeCheck: 0x103c13,
    loadResponseState: code(0x41, 0x8b, 0x87, 0x04, 0x01, 0x00, 0x00), // mov 0x104(%r15),%eax
  },
];
const cave = 0x3c8870; // zero padding after .fini, inside the executable segment's last page
const caveBlockSize = 32;
const caveSize = corkFunctions.length * 3 * caveBlockSize;
const segmentStart = 0xbb000;
const nextSegmentStart = 0x3c9000;

/** A guard in the cave: when the context changed, return as for a moved socket; else `moved`, then back. */
const guard = (at, exitTo, moved, back) => {
  const head = Buffer.concat([loadContextToRax, compareSavedContext]);
  const exit = jne(at + head.length, exitTo);
  const resume = jmp(at + head.length + exit.length + moved.length, back);
  return Buffer.concat([head, exit, moved, resume]);
};

/** Every edit: [offset, original bytes, new bytes]. */
const edits = () => {
  const caveBytes = Buffer.alloc(caveSize);
  const inPlace = corkFunctions.flatMap((cork, index) => {
    const saveContext = cave + index * 3 * caveBlockSize;
    const guardTimeout = saveContext + caveBlockSize;
    const guardClose = saveContext + 2 * caveBlockSize;
    const saveBody = Buffer.concat([markCorked, loadContextToRcx, saveRcx]);
    const afterMarkCorked = cork.beforeCallback + markCorked.length;
    Buffer.concat([saveBody, jmp(saveContext + saveBody.length, afterMarkCorked)]).copy(
      caveBytes,
      saveContext - cave,
    );
    guard(guardTimeout, cork.returnWithoutHttpLogic, loadLoopByte, cork.timeoutOnFailure + 8).copy(
      caveBytes,
      guardTimeout - cave,
    );
    const afterStateLoad = cork.closeCheck + cork.loadResponseState.length;
    guard(guardClose, cork.returnWithoutHttpLogic, cork.loadResponseState, afterStateLoad).copy(
      caveBytes,
      guardClose - cave,
    );
    return [
      [cork.beforeCallback, markCorked, Buffer.concat([jmp(cork.beforeCallback, saveContext), nop2])],
      [
        cork.timeoutOnFailure,
        Buffer.concat([loadContextToRax, loadLoopByte]),
        Buffer.concat([jmp(cork.timeoutOnFailure, guardTimeout), nop3]),
      ],
      [cork.closeCheck, cork.loadResponseState, Buffer.concat([jmp(cork.closeCheck, guardClose), nop2])],
    ];
  });
  return [...inPlace, [cave, Buffer.alloc(caveSize), caveBytes]];
};

// The executable LOAD segment is the second program header (64-bit ELF: 56-byte headers from
// offset 64); its sizes in the file and in memory grow to cover the cave.
const fileSizeField = 64 + 56 + 32;
const memorySizeField = 64 + 56 + 40;

/** The patched addon, from the pinned original; throws on anything else. */
export const patchUwsBinary = (original) => {
  if (sha256(original) !== originalSha256) throw new Error('not the pinned uWebSockets.js addon');
  if (cave + caveSize > nextSegmentStart)
    throw new Error('the new code does not fit before the next segment');
  const patched = Buffer.from(original);
  for (const [offset, before, after] of edits()) {
    if (!patched.subarray(offset, offset + before.length).equals(before))
      throw new Error(`unexpected bytes at 0x${offset.toString(16)}`);
    after.copy(patched, offset);
  }
  const size = BigInt(cave + caveSize - segmentStart);
  patched.writeBigUInt64LE(size, fileSizeField);
  patched.writeBigUInt64LE(size, memorySizeField);
  if (sha256(patched) !== patchedSha256) throw new Error('the patched addon is not the expected one');
  return patched;
};

/** 'patched', 'original' or 'other' for the addon at `path`. */
export const uwsPatchState = (path) => {
  const digest = sha256(readFileSync(path));
  if (digest === patchedSha256) return 'patched';
  return digest === originalSha256 ? 'original' : 'other';
};

const say = (line) => process.stdout.write(`patch-uws: ${line}\n`);
const warn = (line) => process.stderr.write(`patch-uws: ${line}\n`);

/** `--check`: exit 0 when the addon is patched (or there is no patch for this platform), else 1. */
const main = (check) => {
  if (process.platform !== 'linux' || process.arch !== 'x64' || process.versions.modules !== '115') {
    warn(
      `no patch for ${process.platform}/${process.arch}/ABI ${process.versions.modules}; ` +
        'websockets may be dropped right after they open (uWebSockets#1928)',
    );
    return;
  }
  const path = uwsBinaryPath();
  const state = uwsPatchState(path);
  if (check) {
    say(`${path}: ${state}`);
    if (state !== 'patched') process.exitCode = 1;
    return;
  }
  if (state === 'patched') return;
  if (state === 'other') {
    warn(`${path} is not the pinned build; left as it is`);
    return;
  }
  // A new file renamed over the old: npm may have hard-linked the installed one to its cache.
  const temporary = `${path}.patching`;
  writeFileSync(temporary, patchUwsBinary(readFileSync(path)), { mode: 0o755 });
  renameSync(temporary, path);
  say('patched uWebSockets.js against uWebSockets#1928 (an async upgrade could be dropped)');
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main(process.argv.includes('--check'));
