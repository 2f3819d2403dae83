// The OVSDB stream transport: a unix or TCP stream socket polled on the main loop,
// framed by JsonScanner, with coalesced writes. JS sees it through src/native.ts
// (streamConnectUnix / streamConnectTcp / jsonFramer) and src/ovsdb/native-transport.ts.
//
// Event contract (RawStreamCallbacks in src/native.ts):
// - onConnect() once the non-blocking connect completes; never from inside the
//   streamConnect* call itself, even when connect(2) succeeds at once.
// - onMessages(texts) once per poll wake-up with every message completed by that batch of
//   reads (at most kMaxReadsPerPoll reads, so one busy peer cannot starve the loop).
// - onError(err) for a connect, read, write or framing error (messages completed before a
//   framing error are delivered first), then onClose().
// - onClose() exactly once: peer EOF, after onError, or (on the next loop turn) after close().
// - write(text) appends to one output buffer, flushed with a single send(2): right after
//   the onMessages/onConnect callback that wrote (microtasks included), otherwise from an
//   idle handle once per loop turn. What the kernel does not take waits for UV_WRITABLE.
#pragma once

#include <napi.h>

#include "addon.h"

namespace vhostplug {

void InitStream(Napi::Env env, Napi::Object exports, AddonData* data);

}  // namespace vhostplug
