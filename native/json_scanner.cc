// Incremental JSON-RPC framing scanner; the invariants are listed in json_scanner.h.
#include "json_scanner.h"

#include <cstdio>
#include <cstring>
#include <utility>

namespace vhostplug {

namespace {

// Held message buffers above this capacity are released once the message is out, so one
// huge monitor reply does not pin its memory for the life of the connection.
constexpr size_t kKeepHeldCapacity = 4u * 1024u * 1024u;

bool IsJsonWhitespace(uint8_t b) { return b == ' ' || b == '\n' || b == '\r' || b == '\t'; }

}  // namespace

std::string DescribeByte(uint8_t b) {
  char buf[16];
  if (b >= 0x20 && b < 0x7f) {
    snprintf(buf, sizeof(buf), "'%c' (0x%02x)", b, b);
  } else {
    snprintf(buf, sizeof(buf), "0x%02x", b);
  }
  return buf;
}

JsonScanner::JsonScanner(ScanLimits limits) : limits_(limits), openers_(static_cast<size_t>(limits.max_depth) + 1) {}

const char* JsonScanner::error_code() const {
  switch (error_) {
    case ScanError::kFrame:
      return "EOVSDBFRAME";
    case ScanError::kTooBig:
      return "EOVSDBTOOBIG";
    case ScanError::kTooDeep:
      return "EOVSDBTOODEEP";
    case ScanError::kNone:
      break;
  }
  return "";
}

void JsonScanner::Fail(ScanError e, std::string message) {
  error_ = e;
  error_message_ = std::move(message);
  std::string().swap(held_);
}

bool JsonScanner::Feed(const char* data, size_t len, MessageSink& sink) {
  if (error_ != ScanError::kNone) return false;
  next_quote_ = -1;
  next_backslash_ = -1;
  size_t i = 0;
  // Start of the current message inside this chunk (0 when it began in an earlier one).
  size_t start = 0;
  while (i < len) {
    if (depth_ == 0) {
      const uint8_t b = static_cast<uint8_t>(data[i]);
      if (IsJsonWhitespace(b)) {
        ++i;
        continue;
      }
      if (b != '{' && b != '[') {
        Fail(ScanError::kFrame, "OVSDB framing error: unexpected byte " + DescribeByte(b) +
                                    " at top level at stream offset " + std::to_string(stream_offset_ + i) +
                                    " (a JSON-RPC message must start with \"{\")");
        return false;
      }
      openers_[1] = b;
      depth_ = 1;
      start = i;
      ++i;
      continue;
    }
    // Inside a message: scan no further than the size cap allows.
    const size_t allowed = limits_.max_message_bytes - held_.size();
    // Capped only by a byte that actually arrived past the cap.
    const bool capped = len - start > allowed;
    const size_t stop = capped ? start + allowed : len;
    i = ScanInside(data, i, stop, len);
    if (error_ != ScanError::kNone) return false;
    if (depth_ == 0) {
      if (held_.empty()) {
        sink.OnMessage(data + start, i - start);
      } else {
        held_.append(data, i);
        sink.OnMessage(held_.data(), held_.size());
        if (held_.capacity() > kKeepHeldCapacity) {
          std::string().swap(held_);
        } else {
          held_.clear();
        }
      }
      continue;
    }
    if (capped) {
      Fail(ScanError::kTooBig, "OVSDB message exceeds maxMessageBytes (" + std::to_string(limits_.max_message_bytes) +
                                   " bytes) at stream offset " + std::to_string(stream_offset_ + i));
      return false;
    }
  }
  if (depth_ > 0) held_.append(data + start, len - start);
  stream_offset_ += len;
  return true;
}

size_t JsonScanner::ScanInside(const char* data, size_t i, size_t stop, size_t len) {
  while (i < stop) {
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
        ++i;
        continue;
      }
      // Fast path: jump to whichever of the next '"' or '\' comes first. Positions are
      // cached for this chunk so no byte is searched twice.
      if (next_quote_ < static_cast<ptrdiff_t>(i)) {
        const void* q = memchr(data + i, '"', len - i);
        next_quote_ = q ? static_cast<const char*>(q) - data : static_cast<ptrdiff_t>(len);
      }
      if (next_backslash_ < static_cast<ptrdiff_t>(i)) {
        const void* bs = memchr(data + i, '\\', len - i);
        next_backslash_ = bs ? static_cast<const char*>(bs) - data : static_cast<ptrdiff_t>(len);
      }
      const size_t q = static_cast<size_t>(next_quote_);
      const size_t bs = static_cast<size_t>(next_backslash_);
      if (bs < q && bs < stop) {
        escaped_ = true;
        i = bs + 1;
        continue;
      }
      if (q >= stop) return stop;
      in_string_ = false;
      i = q + 1;
      continue;
    }
    const uint8_t b = static_cast<uint8_t>(data[i]);
    switch (b) {
      case '"':
        in_string_ = true;
        break;
      case '{':
      case '[':
        if (depth_ >= limits_.max_depth) {
          Fail(ScanError::kTooDeep, "OVSDB message nesting exceeds maxDepth (" + std::to_string(limits_.max_depth) +
                                        ") at stream offset " + std::to_string(stream_offset_ + i));
          return stop;
        }
        openers_[++depth_] = b;
        break;
      case '}':
      case ']': {
        const uint8_t opener = openers_[depth_];
        if ((b == '}') != (opener == '{')) {
          Fail(ScanError::kFrame, "OVSDB framing error: " + DescribeByte(b) + " closes " + DescribeByte(opener) +
                                      " at stream offset " + std::to_string(stream_offset_ + i));
          return stop;
        }
        if (--depth_ == 0) return i + 1;
        break;
      }
      default:
        break;
    }
    ++i;
  }
  return stop;
}

}  // namespace vhostplug
