// The plain-text tables the wsi plugin reads: the slide list (`slide,label,patient,split,mpp`)
// and the tile manifest (`slide,x,y,label`). A header names the columns, in any order; a column
// the reader does not know is an error (a typo in `patient` would otherwise lose the groups and
// leak a slide across the split). Fields may be quoted ("a,b" and "" inside quotes).
// Threads: plain functions without shared state.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kgain::wsi {

// One row of a CSV file, with its line number for messages.
struct CsvRow {
  int line = 0;
  std::map<std::string, std::string> fields;  // column -> value ("" when the row is short)
};

// Reads `path` (at most 256 MB): the header must hold every column of `required` and may hold
// those of `optional`; anything else, a duplicated column or a NUL byte is an error naming the
// file and line. A byte-order mark and \r\n line ends are accepted, blank lines skipped.
std::vector<CsvRow> read_csv(const std::string& path, const std::vector<std::string>& required,
                             const std::vector<std::string>& optional);

// Parses `text` as CSV rows as above; `source` names it in messages (used by read_csv and the
// fuzz target).
std::vector<CsvRow> parse_csv(const std::string& text, const std::string& source,
                              const std::vector<std::string>& required, const std::vector<std::string>& optional);

// The whole text of the file at `path`; a file over `max_bytes` is refused ("larger than ...;
// not <what>") before more of it is read.
std::string read_text(const std::string& path, std::size_t max_bytes, const std::string& what);

// A whole decimal number in [min, max]; `what` names the field in the message.
std::int64_t parse_int(const std::string& text, std::int64_t min, std::int64_t max, const std::string& what);
// A finite number in [min, max].
double parse_double(const std::string& text, double min, double max, const std::string& what);

}  // namespace kgain::wsi
