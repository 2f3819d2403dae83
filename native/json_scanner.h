// Incremental framing of a JSON-RPC byte stream: cuts it into complete top-level JSON
// texts without parsing them (JSON.parse stays in JS). Plain C++, no Node dependency, so
// the libFuzzer target (native/fuzz/json_scanner_fuzz.cc) links it alone.
//
// Invariants (docs/transport.md; the TS twin is src/ovsdb/framing.ts):
// - Byte-level: the structural bytes { } [ ] " \ are ASCII and UTF-8 continuation bytes are
//   >= 0x80, so a multibyte character split across reads is never misread.
// - Every byte is scanned once (O(n) over the stream); inside strings the scanner jumps to
//   the next '"' or '\' with memchr.
// - Whitespace between messages is skipped. At top level only '{' or '[' may start a
//   value; anything else, or a closer that does not match its opener, is kFrame.
// - A message is at most max_message_bytes long (kTooBig) and nests at most max_depth
//   levels (kTooDeep). Both are detected at the offending byte, before it is buffered.
// - Messages completed before an error are still emitted; after an error the scanner is
//   dead and Feed returns false at once.
// - Concatenating every emitted message and the pending bytes gives the input minus the
//   whitespace skipped between messages (checked by the fuzzer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vhostplug {

enum class ScanError { kNone, kFrame, kTooBig, kTooDeep };

struct ScanLimits {
  size_t max_message_bytes = 64u * 1024u * 1024u;
  uint32_t max_depth = 1000;  // OVS's JSON_MAX_HEIGHT
};

// Receives each complete message. The bytes are valid only during the call.
class MessageSink {
 public:
  virtual ~MessageSink() = default;
  virtual void OnMessage(const char* data, size_t len) = 0;
};

class JsonScanner {
 public:
  explicit JsonScanner(ScanLimits limits);

  // Scans data[0, len): emits every message it completes to sink, keeps the bytes of an
  // incomplete one. Returns false on a framing error (see error()).
  bool Feed(const char* data, size_t len, MessageSink& sink);

  // Bytes held for an incomplete message.
  size_t pending() const { return held_.size(); }
  bool in_message() const { return depth_ > 0; }

  ScanError error() const { return error_; }
  // "EOVSDBFRAME", "EOVSDBTOOBIG", "EOVSDBTOODEEP", or "" when there is no error.
  const char* error_code() const;
  // Human-readable description with the cap and the stream offset.
  const std::string& error_message() const { return error_message_; }

  const ScanLimits& limits() const { return limits_; }

 private:
  // Scans data[i, stop) inside a message; returns the index after the byte that closed
  // the top-level value (depth_ is then 0), or stop; after an error error_ is set.
  size_t ScanInside(const char* data, size_t i, size_t stop, size_t len);
  void Fail(ScanError e, std::string message);

  ScanLimits limits_;
  uint32_t depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
  // openers_[d] is the byte that opened level d (1-based): '{' or '['.
  std::vector<uint8_t> openers_;
  // Bytes of the incomplete message, already scanned.
  std::string held_;
  // Stream bytes consumed before the current Feed (for error positions).
  uint64_t stream_offset_ = 0;
  // memchr results (indexes, len when absent, -1 unknown) cached for the current Feed,
  // so each byte is searched once.
  ptrdiff_t next_quote_ = -1;
  ptrdiff_t next_backslash_ = -1;
  ScanError error_ = ScanError::kNone;
  std::string error_message_;
};

// Printable description of a byte for error messages: "'}' (0x7d)" or "0x00".
std::string DescribeByte(uint8_t b);

}  // namespace vhostplug
