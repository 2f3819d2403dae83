// STUB: replaced by the incremental JSON framing scanner.
