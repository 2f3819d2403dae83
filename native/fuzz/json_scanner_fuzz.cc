// libFuzzer target for the JSON-RPC framing scanner alone (native/json_scanner.cc).
// Input layout: byte 0 picks the split points, byte 1 the limits, the rest is the stream.
// Checked against a byte-at-a-time reference scanner written independently below:
//  - same messages, same error kind at the same stream offset;
//  - messages + pending bytes == the input minus whitespace skipped between messages;
//  - every message is balanced: alone, it frames to exactly itself;
//  - no message is longer than the cap.
// Build and run: scripts/fuzz.sh [SECONDS].
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "json_scanner.h"

using vhostplug::JsonScanner;
using vhostplug::MessageSink;
using vhostplug::ScanError;
using vhostplug::ScanLimits;

namespace {

[[noreturn]] void Violation(const char* what) {
  fprintf(stderr, "json_scanner invariant violated: %s\n", what);
  abort();
}

struct Collect : MessageSink {
  std::vector<std::string> messages;
  void OnMessage(const char* data, size_t len) override { messages.emplace_back(data, len); }
};

bool IsWs(uint8_t b) { return b == ' ' || b == '\n' || b == '\r' || b == '\t'; }

struct Reference {
  std::vector<std::string> messages;
  ScanError error = ScanError::kNone;
  size_t error_offset = 0;
  size_t pending = 0;
};

// The obvious byte-at-a-time scanner over the whole input at once.
Reference ReferenceScan(const uint8_t* d, size_t n, const ScanLimits& lim) {
  Reference r;
  std::vector<uint8_t> stack;
  bool in_string = false;
  bool escaped = false;
  size_t start = 0;
  auto fail = [&](ScanError e, size_t at) {
    r.error = e;
    r.error_offset = at;
  };
  for (size_t i = 0; i < n; i++) {
    const uint8_t b = d[i];
    if (stack.empty()) {
      if (IsWs(b)) continue;
      if (b != '{' && b != '[') return fail(ScanError::kFrame, i), r;
      stack.push_back(b);
      start = i;
      continue;
    }
    if (i - start + 1 > lim.max_message_bytes) return fail(ScanError::kTooBig, i), r;
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (b == '\\') {
        escaped = true;
      } else if (b == '"') {
        in_string = false;
      }
      continue;
    }
    if (b == '"') {
      in_string = true;
    } else if (b == '{' || b == '[') {
      if (stack.size() >= lim.max_depth) return fail(ScanError::kTooDeep, i), r;
      stack.push_back(b);
    } else if (b == '}' || b == ']') {
      if ((b == '}') != (stack.back() == '{')) return fail(ScanError::kFrame, i), r;
      stack.pop_back();
      if (stack.empty()) r.messages.emplace_back(reinterpret_cast<const char*>(d) + start, i - start + 1);
    }
  }
  r.pending = stack.empty() ? 0 : n - start;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t size) {
  if (size < 2) return 0;
  const uint8_t split = input[0];
  const uint8_t lim_byte = input[1];
  const uint8_t* data = input + 2;
  const size_t n = size - 2;

  ScanLimits lim;
  if (lim_byte & 0x80) {
    lim.max_depth = 1 + (lim_byte & 0x0f);
    lim.max_message_bytes = 1 + ((lim_byte >> 4) & 0x7) * 37;
  } else if (lim_byte & 0x40) {
    lim.max_depth = 1 + (lim_byte & 0x3f);
  }

  // Chunking: a first cut at a position from byte 0, then pieces of 1..8 bytes (or all).
  JsonScanner scanner(lim);
  Collect got;
  const size_t first = n * split / 256;
  const size_t piece = (split & 0x7) + 1;
  bool ok = scanner.Feed(reinterpret_cast<const char*>(data), first, got);
  const bool bytewise = (split & 0x8) != 0;
  for (size_t off = first; ok && off < n;) {
    const size_t take = bytewise ? std::min(piece, n - off) : n - off;
    ok = scanner.Feed(reinterpret_cast<const char*>(data) + off, take, got);
    off += take;
  }

  const Reference ref = ReferenceScan(data, n, lim);
  if (got.messages != ref.messages) Violation("messages differ from the reference scanner");
  if (scanner.error() != ref.error) Violation("error kind differs from the reference scanner");
  if (ok != (ref.error == ScanError::kNone)) Violation("Feed result disagrees with error()");
  if (!ok) {
    const std::string at = "stream offset " + std::to_string(ref.error_offset);
    if (scanner.error_message().find(at) == std::string::npos) Violation("error offset differs from the reference");
    if (*scanner.error_code() == '\0') Violation("error without a code");
    return 0;
  }

  // Messages + pending == input minus the whitespace between messages.
  size_t pos = 0;
  for (const std::string& m : got.messages) {
    while (pos < n && IsWs(data[pos])) pos++;
    if (m.size() > n - pos || memcmp(data + pos, m.data(), m.size()) != 0)
      Violation("message is not the next input bytes");
    pos += m.size();
    if (m.size() > lim.max_message_bytes) Violation("message over the cap");
  }
  while (pos < n && IsWs(data[pos])) pos++;
  if (n - pos != scanner.pending()) Violation("pending() is not the unconsumed input");
  if (scanner.pending() != ref.pending) Violation("pending differs from the reference");

  // Each message alone is balanced: it frames to exactly itself.
  for (const std::string& m : got.messages) {
    const char open = m.front();
    const char close = m.back();
    if (!((open == '{' && close == '}') || (open == '[' && close == ']'))) Violation("message not bracketed");
    JsonScanner alone(lim);
    Collect c;
    if (!alone.Feed(m.data(), m.size(), c) || c.messages.size() != 1 || c.messages[0] != m || alone.pending() != 0) {
      Violation("message does not frame to itself");
    }
  }
  return 0;
}
